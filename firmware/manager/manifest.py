# ruff: noqa: F821  (include/package are the MicroPython manifest functions)
# Freeze the StringCare manager role into a MicroPython image: the code then runs from
# flash instead of RAM - a must for a large site: 600 modules need ~79 KB of data, and
# the manager's bytecode loaded from .mpy files would take another ~122 KB of heap
# (docs/manager.md, "Memory").
#
#   git clone https://github.com/micropython/micropython && cd micropython
#   make -C mpy-cross
#   cd ports/rp2     # or ports/stm32
#   STRINGCARE_ROOT=/path/to/stringcare STRINGCARE_BOARD=pico_w_manager \
#     make BOARD=RPI_PICO_W FROZEN_MANIFEST=/path/to/stringcare/firmware/manager/manifest.py
#
# Flash the image (Pico W: hold BOOTSEL, copy build-RPI_PICO_W/firmware.uf2), then put
# only the entry, the board stamp, the settings and site.json on the filesystem:
#   stringcare bundle --board pico_w_manager
#   mpremote cp build/firmware/pico_w_manager/main.py \
#               build/firmware/pico_w_manager/stringcare_bundle.py :
import os

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules

os.environ.setdefault("STRINGCARE_BOARD", "pico_w_manager")
include("../freeze.py")  # exactly the modules this role imports (firmware/freeze.py)
