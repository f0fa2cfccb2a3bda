# StringCare USB <-> RS-485 converter: the entry a board runs at boot.  Bridges the
# USB console to the bus until the host sends the REPL escape (CR, Ctrl-C after 50 ms
# of quiet: mpremote's first bytes), or stays at the REPL when the REPL button is held
# at power-up (boards/rp2040_converter/README.md).
import stringcare_bundle as bundle

import boards
from shared import bridge

settings = boards.settings()
io = boards.shell(bundle.BOARD, settings, "make_io")
if io.repl_requested():
    print("stringcare: converter: REPL button held, bridge not started")
else:
    print(bridge.banner(io.baud))
    bridge.run(io, io.baud)
    print("stringcare: converter: REPL (soft reset with Ctrl-D to bridge again)")
