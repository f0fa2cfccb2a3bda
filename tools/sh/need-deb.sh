#!/usr/bin/env bash
# need-deb.sh COMMAND PACKAGE [REASON]: make sure a Debian package's command exists
# (COMMAND may be an absolute path: a file the package installs).
# Installs it with apt-get when missing and we are root (or have passwordless sudo);
# otherwise explains what to install and fails.
set -euo pipefail
cmd=$1 pkg=$2 reason=${3:-}
command -v "$cmd" >/dev/null 2>&1 && exit 0
case $cmd in /*) [ -e "$cmd" ] && exit 0 ;; esac
[ -x "/usr/sbin/$cmd" ] && exit 0
echo "setup: '$cmd' is missing; installing Debian package '$pkg'${reason:+ ($reason)}"
if [ "$(id -u)" -eq 0 ]; then sudo=(); elif sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  echo "setup: cannot install '$pkg' without root. Run: sudo apt-get install -y $pkg" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup: no apt-get on this system; install '$pkg' (which provides '$cmd') with your package manager" >&2
  exit 1
fi
stamp=/tmp/.stringcare-apt-updated
if [ ! -e "$stamp" ] || [ -n "$(find "$stamp" -mmin +360 2>/dev/null)" ]; then
  "${sudo[@]}" apt-get update -qq || { echo "setup: apt-get update failed (network?)" >&2; exit 1; }
  touch "$stamp"
fi
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$pkg" >/dev/null || {
  echo "setup: apt-get install $pkg failed; install it by hand: sudo apt-get install -y $pkg" >&2
  exit 1
}
command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || [ -e "$cmd" ] || {
  echo "setup: installed '$pkg' but '$cmd' is still not on PATH" >&2
  exit 1
}
