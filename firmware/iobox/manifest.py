# ruff: noqa: F821  (include/package are the MicroPython manifest functions)
# Freeze the StringCare iobox role into a MicroPython image (see module/manifest.py for
# the whole procedure):
#
#   cd micropython/ports/rp2
#   STRINGCARE_ROOT=/path/to/stringcare STRINGCARE_BOARD=rp2040_iobox \
#     make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/stringcare/firmware/iobox/manifest.py
#
# Optional on a Pico (the bundle that `stringcare deploy` copies fits its flash).
import os

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules

os.environ.setdefault("STRINGCARE_BOARD", "rp2040_iobox")
include("../freeze.py")  # exactly the modules this role imports (firmware/freeze.py)
