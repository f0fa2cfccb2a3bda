#!/usr/bin/env bash
# Create or update .venv with the pinned dependencies; called by the Makefile only
# when requirements*.txt or pyproject.toml changed since the last install (stamp).
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3}

if ! command -v "$python" >/dev/null; then
  echo "setup: $python not found; install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "setup: $("$python" --version) is too old; StringCare's host tools need Python 3.11+" >&2
  echo "       run: make PYTHON=python3.11 ..." >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating $venv"
  "$python" -m venv "$venv" || {
    echo "setup: '$python -m venv' failed; on Debian/Ubuntu install python3-venv" >&2
    exit 1
  }
fi
# --no-compile: Python compiles (and caches) what a run imports on first use; compiling
# every installed file up front took ~10 of the ~26 s of an install (2026-12-03)
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
install=("${pip[@]}" install --no-compile)
echo "setup: installing pinned packages (requirements.txt)"
"${install[@]}" -r requirements.txt
"${install[@]}" --no-deps --no-build-isolation -e .
while read -r port reqs; do
  case "$port" in ""|\#*) continue ;; esac
  echo "setup: MicroPython stubs for $port -> $venv/stubs/$port"
  rm -rf "$venv/stubs/$port"
  # shellcheck disable=SC2086
  "${install[@]}" --no-deps --target "$venv/stubs/$port" $reqs
done < requirements-stubs.txt
echo "setup: done"
