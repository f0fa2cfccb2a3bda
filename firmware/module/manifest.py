# ruff: noqa: F821  (include/package are the MicroPython manifest functions)
# Freeze the StringCare module role into a MicroPython image: the code then runs from
# flash instead of RAM (a must on the NUCLEO-G474RE, whose 128 KB of RAM cannot hold
# the module's bytecode next to its buffers; recommended on the Pico too).
#
#   git clone https://github.com/micropython/micropython && cd micropython
#   make -C mpy-cross
#   cd ports/rp2     # or ports/stm32
#   STRINGCARE_ROOT=/path/to/stringcare STRINGCARE_BOARD=rp2040_module \
#     make BOARD=RPI_PICO FROZEN_MANIFEST=/path/to/stringcare/firmware/module/manifest.py
#   (stm32: STRINGCARE_BOARD=stm32_module make BOARD=NUCLEO_G474RE FROZEN_MANIFEST=...)
#
# Flash the image (Pico: hold BOOTSEL, copy build-RPI_PICO/firmware.uf2), then put only
# the entry (as /main.py) and the board stamp on the filesystem - not checked by a
# loader: docs/deploy.md, "Frozen images: what is verified, and what is not yet":
#   stringcare bundle --board rp2040_module
#   mpremote cp build/firmware/rp2040_module/stringcare_entry.py :main.py
#   mpremote cp build/firmware/rp2040_module/stringcare_bundle.py :
import os

include("$(PORT_DIR)/boards/manifest.py")  # the port's own frozen modules

os.environ.setdefault("STRINGCARE_BOARD", "rp2040_module")
include("../freeze.py")  # exactly the modules this role imports (firmware/freeze.py)
