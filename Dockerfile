# syntax=docker/dockerfile:1
# CityWok's image: the page built with Node, the package installed into a virtual
# environment, and a slim runtime with ffmpeg that runs as a non-root user.
#   docker build -t citywok --build-arg VERSION=$(git describe --tags --always) .
# Linted by hadolint in scripts/test (rules it is told to skip: .hadolint.yaml).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- 1. the web page (React + Vite) -----------------------------------------------------
FROM node:22-bookworm-slim AS page
WORKDIR /src/web
COPY web/package.json web/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY web/ ./
# vite writes into ../src/citywok/web/static, as scripts/build-web does
RUN npm run build

# -- 2. the Python package and its dependencies, into /opt/citywok ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/citywok
COPY pyproject.toml README.md LICENSE ./
COPY src/ src/
COPY --from=page /src/src/citywok/web/static/ src/citywok/web/static/
RUN /opt/citywok/bin/pip install ".[web,s3,postgres]"

# -- 3. the runtime: Python, ffmpeg, the environment from stage 2, nothing else -----------
FROM ${PYTHON_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG SOURCE=https://github.com/citywok/citywok
ARG REVISION=unknown
LABEL org.opencontainers.image.title="CityWok" \
      org.opencontainers.image.description="Tell which TV episode a short clip comes from, and where in it." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="MIT"
RUN apt-get update \
 && apt-get install -y --no-install-recommends ffmpeg \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --create-home citywok
COPY --from=build /opt/citywok /opt/citywok
ENV PATH=/opt/citywok/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CITYWOK_HOST=0.0.0.0 \
    CITYWOK_PORT=8000 \
    CITYWOK_INDEX=/data/index
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8000
# /healthz answers while the process lives (readiness, index loaded: /readyz).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
CMD ["citywok", "serve"]
