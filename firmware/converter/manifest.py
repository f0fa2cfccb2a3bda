# ruff: noqa: F821  (include/package are the MicroPython manifest functions)
# Freeze the StringCare converter role into a MicroPython image (see module/manifest.py
# for the whole procedure):
#
#   cd micropython/ports/rp2
#   STRINGCARE_ROOT=/path/to/stringcare STRINGCARE_BOARD=rp2040_converter \
#     make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/stringcare/firmware/converter/manifest.py
import os

include("$(PORT_DIR)/boards/manifest.py")

_ROOT = os.environ["STRINGCARE_ROOT"]
_BOARD = os.environ.get("STRINGCARE_BOARD", "rp2040_converter")
package(
    "shared",
    files=("__init__.py", "compat.py", "protocol.py", "bridge.py", "version.py"),
    base_path=_ROOT,
)
package(
    "boards", files=("__init__.py", _BOARD + "/__init__.py", _BOARD + "/hal.py"), base_path=_ROOT
)
