# What CityWok needs from the machine, and how to tell whether it is there. Sourced by
# scripts/setup, scripts/build-web and scripts/test-web (tests/test_scripts.py tests it).

# Node.js installed from PyPI into the project's .venv (scripts/setup does that where the
# system's packages are too old) is found like any other.
_citywok_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -x "$_citywok_root/.venv/bin/node" ]; then
  PATH="$_citywok_root/.venv/bin:$PATH"
  export PATH
fi

# The major number of a version as apt, node or a package.json writes it
# ("v20.20.2", "18.20.4+dfsg-1", "1:12.22.9~dfsg"); 0 for none.
version_major() {
  local v="${1#*:}"
  v="${v#v}"
  v="${v%%[!0-9]*}"
  echo "${v:-0}"
}

# The Node.js major the page needs: the "engines" field of web/package.json.
node_wanted() {
  local root
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  python3 - "$root/web/package.json" <<'PY'
import json, re, sys
engines = json.load(open(sys.argv[1])).get("engines", {}).get("node", ">=20")
print(re.search(r"\d+", engines).group(0))
PY
}

# The major of the node on PATH (0 without one).
node_have() {
  if command -v node >/dev/null && command -v npm >/dev/null; then
    version_major "$(node --version 2>/dev/null)"
  else
    echo 0
  fi
}

# Whether the node on PATH can build and test the page.
node_ok() {
  [ "$(node_have)" -ge "$(node_wanted)" ]
}

# The major of the version apt would install for a package (0 if none or no apt).
apt_candidate_major() {
  command -v apt-cache >/dev/null || { echo 0; return; }
  version_major "$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n1)"
}

# What to do about Node.js, given the major on PATH, apt's candidate and the one wanted:
# "ok", "install" (apt has one new enough) or "too-old" (apt's is older, or there is none).
node_plan() {
  local have="${1:-0}" candidate="${2:-0}" wanted="$3"
  if [ "$have" -ge "$wanted" ]; then echo ok
  elif [ "${candidate:-0}" -ge "$wanted" ]; then echo install
  else echo too-old
  fi
}

# Whether python3 can make a virtual environment (Debian/Ubuntu split ensurepip out into
# python3-venv).
venv_ok() {
  command -v python3 >/dev/null && python3 -c "import ensurepip, venv" 2>/dev/null
}
