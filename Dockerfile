# syntax=docker/dockerfile:1
# CityWok's image: the page built with Node, the locked Python packages and the package
# in a virtual environment, and a slim runtime with ffmpeg that runs as a non-root user.
#   docker build -t citywok --build-arg VERSION=$(git describe --tags --always) .
# Where no image registry answers, scripts/container-image builds this same file with
# podman: the base is made from Debian's packages (PYTHON_IMAGE), and the page built by
# scripts/build-web replaces the `page` stage (--build-context page=...).
# Linted by hadolint in scripts/test (rules it is told to skip: .hadolint.yaml).

# Any Debian bookworm with python3 and its venv module; the build and runtime stages
# must share it (the environment's python is a link into it).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

# -- 1. the web page (React + Vite) -----------------------------------------------------
FROM ${NODE_IMAGE} AS page-build
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
# vite writes into ../src/citywok/web/static, as scripts/build-web does
RUN npm run build

# The built page alone, at the root, so that a folder holding a page built elsewhere can
# stand in for this stage: --build-context page=src/citywok/web/static
FROM scratch AS page
COPY --from=page-build /src/src/citywok/web/static/ /

# -- 2. the Python packages from the lock, then the package, into /opt/citywok ----------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python3 -m venv /opt/citywok
COPY requirements-image.lock ./
# Exactly what scripts/relock locked, hashes checked, nothing resolved here. Behind a
# proxy that re-signs TLS, its CA bundle comes in as a build secret, never a layer:
#   --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && /opt/citywok/bin/pip install --require-hashes --no-deps -r requirements-image.lock
COPY pyproject.toml README.md LICENSE ./
COPY src/ src/
COPY --from=page / src/citywok/web/static/
# setuptools comes from the lock, so the package builds with nothing fetched
RUN /opt/citywok/bin/pip install --no-deps --no-build-isolation . \
 && /opt/citywok/bin/python -c "import citywok.web.app"

# -- 3. the runtime: Python, ffmpeg, the environment from stage 2, nothing else -----------
FROM ${PYTHON_IMAGE} AS runtime
# (scripts/container-image prunes superseded images by this title; the build stage has
# no label, so the prune leaves its cached layers for the next build)
LABEL org.opencontainers.image.title="CityWok" \
      org.opencontainers.image.description="Tell which TV episode a short clip comes from, and where in it." \
      org.opencontainers.image.licenses="MIT"
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --create-home citywok
COPY --from=build /opt/citywok /opt/citywok
# Last, so that a new revision rebuilds no layer above
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/citywok/citywok
ARG REVISION=unknown
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}"
ENV PATH=/opt/citywok/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CITYWOK_HOST=0.0.0.0 \
    CITYWOK_PORT=8000 \
    CITYWOK_INDEX=/data/index \
    CITYWOK_DATA_DIR=/data/service
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# /healthz answers while the process lives (readiness, index loaded: /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('CITYWOK_PORT', '8000') + '/healthz', timeout=4).status != 200)"]
CMD ["citywok", "serve"]
