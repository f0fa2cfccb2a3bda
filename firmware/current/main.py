# StringCare string current sensor: the entry a sensor board runs at boot (/main.py,
# written by `stringcare deploy`).  The board's shell is boards/<board>/hal.py, the
# logic shared/currentsensor.py, the loop shared/busdevice.py.
import stringcare_bundle as bundle

import boards
from shared import busdevice, version
from shared.currentsensor import CurrentSensorCore

settings = boards.settings()
hal = boards.shell(bundle.BOARD, settings)
core = CurrentSensorCore(
    hal.string_no, hal.uid, hal.hw_rev, hal.ma_per_code_num, hal.ma_per_code_den,
    hal.range_ma, hal.zero_code,
)  # fmt: skip
busdevice.run(
    hal,
    core,
    "stringcare: current sensor %s started, string %d (address 0x%04x), range %d A"
    % (version.VERSION, core.string_no, core.address, core.range_ma // 1000),
)
