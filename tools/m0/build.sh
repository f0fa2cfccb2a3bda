#!/usr/bin/env bash
# Build StringCare's emulated Cortex-M0 firmware: MicroPython's qemu port at a pinned
# release, board tools/m0/board (QEMU "microbit" machine = ARMv6-M Cortex-M0, single-
# precision floats, 31-bit small ints like the RP2040 port).
#
#   tools/m0/build.sh MICROPYTHON_GIT_DIR     # a clone (or bare mirror) of micropython
#
# The tag is pinned below; the source is exported with `git archive` (no submodules are
# needed: nothing is frozen, no btree), built under build/m0/ with the Debian
# gcc-arm-none-eabi toolchain, and the result is copied to tools/m0/firmware.bin with
# its SHA-256 in tools/m0/firmware.sha256.  The build is reproducible: the version
# header takes the tag and the tag's commit date (SOURCE_DATE_EPOCH), never the clock
# or the surrounding checkout, and the raw .bin holds no paths.  `--check` rebuilds and
# fails if the result differs from the committed binary.
set -euo pipefail
TAG=v1.28.0
COMMIT=e0e9fbb17ed6fd06bb76e266ae554784c9c80804
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
check=0
if [ "${1:-}" = "--check" ]; then check=1; shift; fi
src_git=${1:-${MICROPYTHON_SRC:-}}
if [ -z "$src_git" ]; then
  echo "usage: tools/m0/build.sh [--check] MICROPYTHON_GIT_DIR (a clone of github.com/micropython/micropython)" >&2
  exit 2
fi
got=$(git -C "$src_git" rev-parse "$TAG^{commit}" 2>/dev/null) || {
  echo "build-m0: $src_git has no tag $TAG; fetch it: git -C $src_git fetch --tags" >&2
  exit 1
}
if [ "$got" != "$COMMIT" ]; then
  echo "build-m0: tag $TAG in $src_git is $got, expected $COMMIT (a moved tag?)" >&2
  exit 1
fi
"$root/tools/sh/need-deb.sh" arm-none-eabi-gcc gcc-arm-none-eabi "the emulated Cortex-M0 firmware"
"$root/tools/sh/need-deb.sh" /usr/lib/arm-none-eabi/include/stdlib.h libnewlib-arm-none-eabi "C headers for the firmware"

out=$root/build/m0
rm -rf "$out/src"
mkdir -p "$out/src"
git -C "$src_git" archive --format=tar "$COMMIT" | tar -x -C "$out/src"
cp -r "$here/board" "$out/src/ports/qemu/boards/STRINGCARE_M0"
for p in "$here"/patches/*.patch; do
  [ -e "$p" ] || continue
  patch -d "$out/src" -p1 --quiet < "$p"
done
epoch=$(git -C "$src_git" log -1 --format=%ct "$COMMIT")
make -C "$out/src/ports/qemu" BOARD=STRINGCARE_M0 \
  MICROPY_GIT_TAG="$TAG" MICROPY_GIT_HASH="${COMMIT:0:10}" SOURCE_DATE_EPOCH="$epoch" \
  -j"$(nproc)" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log" >&2; exit 1; }
elf=$out/src/ports/qemu/build-STRINGCARE_M0/firmware.elf
arm-none-eabi-objcopy -O binary "$elf" "$out/firmware.bin"
sum=$(sha256sum "$out/firmware.bin" | cut -d' ' -f1)
if [ $check -eq 1 ]; then
  want=$(cut -d' ' -f1 "$here/firmware.sha256")
  if [ "$sum" != "$want" ]; then
    echo "build-m0: rebuilt firmware $sum differs from the committed $want" >&2
    exit 1
  fi
  echo "build-m0: rebuilt firmware matches the committed binary ($sum)"
  exit 0
fi
cp "$out/firmware.bin" "$here/firmware.bin"
echo "$sum  firmware.bin" >"$here/firmware.sha256"
echo "build-m0: $here/firmware.bin ($(stat -c %s "$here/firmware.bin") bytes, sha256 $sum)"
