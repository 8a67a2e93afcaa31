#!/usr/bin/env bash
# Installs schemathesis (PyPI) for the admin API's conformance run (tests/suite/hardening/schema.rs) into its own
# virtualenv, from requirements.txt beside this script: every wheel of the dependency closure pinned and checked
# by sha256.
# The cache is outside the repository: $SHIREN_SCHEMATHESIS_DIR (CI: /var/cache/shiren-ci/schemathesis).
# Safe to run concurrently (flock) and a fast no-op when the cache already matches the pinned file.
# Prints the virtualenv's directory (its `bin/st` is the command).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${SHIREN_SCHEMATHESIS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/shiren/schemathesis}
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9

command -v python3 >/dev/null 2>&1 || { echo "install.sh: python3 (with venv) is required" >&2; exit 1; }
stamp="$venv/.stamp-$(sha256sum "$here/requirements.txt" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  echo "installing schemathesis into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --require-hashes --only-binary :all: \
    -r "$here/requirements.txt" >&2
  touch "$stamp"
fi
echo "$venv"
