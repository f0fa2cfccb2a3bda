# ruff: noqa: F821  (include/package are the MicroPython manifest functions)
# Freeze the StringCare current role into a MicroPython image (see module/manifest.py for
# the whole procedure):
#
#   cd micropython/ports/rp2
#   STRINGCARE_ROOT=/path/to/stringcare STRINGCARE_BOARD=rp2040_current \
#     make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/stringcare/firmware/current/manifest.py
#
# Optional on a Pico (the bundle that `stringcare deploy` copies fits its flash).
import os

include("$(PORT_DIR)/boards/manifest.py")

_ROOT = os.environ["STRINGCARE_ROOT"]
_BOARD = os.environ.get("STRINGCARE_BOARD", "rp2040_current")
package(
    "shared",
    files=(
        "__init__.py",
        "compat.py",
        "protocol.py",
        "version.py",
        "busdevice.py",
        "currentsensor.py",
    ),
    base_path=_ROOT,
)
package(
    "boards", files=("__init__.py", _BOARD + "/__init__.py", _BOARD + "/hal.py"), base_path=_ROOT
)
