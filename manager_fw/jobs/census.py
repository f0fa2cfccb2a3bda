# The start-up census (SPEC §3): IO_READ to every relay/IO box, CURRENT_READ to every
# current sensor, INFO to every configured module, CENSUS_TRIES tries each.  What the
# replies say goes to the core (manager_fw/revisions.py judges the modules found).

from manager_fw import bus as b
from manager_fw.jobs import CoreJob
from shared import protocol as p
from shared.compat import const

# start-up state of each module (SPEC §3)
CENSUS_NOT_POLLED = const(0)  # not asked yet
CENSUS_OK = const(1)  # initialised: answered INFO
CENSUS_UNREACHABLE = const(2)  # no answer to 3 INFO requests
CENSUS_NAMES = ("not yet polled", "initialised", "not reachable")
CENSUS_TRIES = const(3)


class CensusJob(CoreJob):
    """Start-up census (foreground): relay boxes, current sensors, then every module."""

    def __init__(self, core) -> None:
        self.core = core
        self.done = False
        self.step = 0  # index into boxes + sensors + modules
        self.tries = 0
        self.answered = False
        self._version_errors = 0
        boxes = core.cfg.boxes
        self.boxes = boxes
        self.sensors = [s for s in core.cfg.current_sensor if s]
        self.total = len(boxes) + len(self.sensors) + core.layout.module_count

    def _target(self):
        """(kind, address, module index or box/sensor number) of the current step."""
        nb = len(self.boxes)
        ns = len(self.sensors)
        i = self.step
        if i < nb:
            return 0, p.ADDR_RELAY_BOX_BASE + self.boxes[i], self.boxes[i]
        if i < nb + ns:
            return 1, p.ADDR_CURRENT_SENSOR_BASE + self.sensors[i - nb], self.sensors[i - nb]
        m = i - nb - ns
        return 2, self.core.layout.addresses[m], m

    def next_request(self, master, now_us: int) -> bool:
        if self.step >= self.total:
            self.done = True
            return False
        kind, addr, _which = self._target()
        self.answered = False
        self._version_errors = master.deframer.version_errors
        cmd = (p.CMD_IO_READ, p.CMD_CURRENT_READ, p.CMD_INFO)[kind]
        master.request(addr, cmd, 0, b.EXPECT_ONE, 0)
        return True

    def on_reply(self, master, frame, now_us: int) -> bool:
        kind, addr, which = self._target()
        if frame.src != addr:
            return False
        core = self.core
        if kind == 2 and frame.cmd == p.CMD_INFO | p.REPLY and frame.length == 25:
            core._module_info(which, frame)
            self.answered = True
        elif kind == 0 and frame.cmd == p.CMD_IO_READ | p.REPLY and frame.length == 2:
            core._box_state(which, frame.u8(0), frame.u8(1))
            self.answered = True
        elif kind == 1 and frame.cmd == p.CMD_CURRENT_READ | p.REPLY and frame.length == 6:
            core._sensor_reading(which, frame.i32(0), frame.u8(5))
            self.answered = True
        return True

    def on_window_end(self, master, now_us: int) -> None:
        kind, addr, which = self._target()
        core = self.core
        if not self.answered:
            if master.deframer.version_errors != self._version_errors:
                core._wrong_protocol(kind, addr, which, master.deframer.last_version)
                self.tries = CENSUS_TRIES
            else:
                self.tries += 1
            if self.tries < CENSUS_TRIES:
                return  # ask again
            if kind == 2:
                core.census[which] = CENSUS_UNREACHABLE
            else:
                core._device_missing(kind, which)
        self.tries = 0
        self.step += 1
