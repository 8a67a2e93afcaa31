#!/usr/bin/env bash
# Installs the official merchant SDKs the integration tests drive, from the package registries, pinned by version
# and checked (npm: lockfile integrity; pip: --require-hashes), into a cache outside the repository.
# Safe to run concurrently (flock) and a fast no-op when the cache already matches the pinned files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${SHIREN_SDK_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shiren/sdk}
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

need() { command -v "$1" >/dev/null 2>&1 || { echo "install.sh: '$1' is required (install Node.js/npm and Python 3 with venv)" >&2; exit 1; }; }

# Node: alipay-sdk from tests/sdk/node/package-lock.json.
need node; need npm
node_stamp="$cache/node/.stamp-$(cat "$here/node/package-lock.json" "$here/node/package.json" | sha256sum | cut -c1-16)"
if [ ! -f "$node_stamp" ]; then
  echo "installing Node SDK clients into $cache/node" >&2
  rm -rf "$cache/node" && mkdir -p "$cache/node"
  cp "$here/node/package.json" "$here/node/package-lock.json" "$here/node/.npmrc" "$cache/node/"
  (cd "$cache/node" && npm ci --no-audit --no-fund --loglevel=error >&2)
  touch "$node_stamp"
fi

# Python: alipay-sdk-python in its own virtualenv.
need python3
py_stamp="$cache/python/.stamp-$(sha256sum "$here/python/requirements.txt" | cut -c1-16)"
if [ ! -f "$py_stamp" ]; then
  echo "installing Python SDK clients into $cache/python" >&2
  rm -rf "$cache/python"
  python3 -m venv "$cache/python"
  "$cache/python/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary :all: \
    -r "$here/python/requirements.txt" >&2
  touch "$py_stamp"
fi
echo "$cache"
