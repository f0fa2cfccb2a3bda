# CURRENT_READ of one string's current sensor (every cycle).

from manager_fw import bus as b
from shared import protocol as p
from shared.compat import const
from shared.history_cadence import CURRENT_NONE

SENSOR_LOST_MISSES = const(3)


class CurrentJob(b.BusJob):
    """CURRENT_READ of one string's current sensor."""

    def __init__(self, core, sensor: int) -> None:
        self.core = core
        self.sensor = sensor
        self.queued = False
        self.answered = False

    def next_request(self, master, now_us: int) -> bool:
        self.queued = False
        self.answered = False
        master.request(p.ADDR_CURRENT_SENSOR_BASE + self.sensor, p.CMD_CURRENT_READ, 0,
                       b.EXPECT_ONE, 0)  # fmt: skip
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        if frame.src != p.ADDR_CURRENT_SENSOR_BASE + self.sensor:
            return False
        if frame.cmd == p.CMD_CURRENT_READ | p.REPLY and frame.length == 6:
            self.answered = True
            self.core._sensor_reading(self.sensor, frame.i32(0), frame.u8(5))
        return True

    def on_window_end(self, master, now_us: int) -> None:
        if not self.answered:
            self.core._sensor_missed(self.sensor)


# -- what the replies mean for the core (functions of the core) ---------------


def sensor_reading(core, sensor: int, current_ma: int, flags: int) -> None:
    k = core.string_of_sensor[sensor]
    if k == 0xFF:
        return
    core.sensor_misses[sensor] = 0
    core.sensor_fault[sensor] = flags
    core.string_current_ma[k] = CURRENT_NONE if flags & 1 else current_ma
    core._current_new[k] = 1


def sensor_missed(core, sensor: int) -> None:
    k = core.string_of_sensor[sensor]
    if k == 0xFF:
        return
    m = core.sensor_misses[sensor]
    if m < 255:
        core.sensor_misses[sensor] = m + 1
    if m + 1 >= SENSOR_LOST_MISSES and core.string_current_ma[k] != CURRENT_NONE:
        core.string_current_ma[k] = CURRENT_NONE
        core._current_new[k] = 1
