# A site for manager-core scenarios: the core (manager_fw/core.py) with its history and
# event log on simulated flash, module responders, current sensors and relay/IO boxes on
# the virtual bus, all in virtual time (boards/sim/manager_shell.py).  The test sets the
# modules' values; for Ri it plays the module: an RI_START is completed after the
# duration the module announced, with the Ri value the test chose.
#
# Memory: the manager tests get a 192 KB MicroPython heap.  The core and the simulated
# site are imported here, at the test file's import, where the runner treats code as
# frozen into flash (host_tests/mp_runner.py) as it is on a board: the heap is charged
# with what they keep in RAM, not with their bytecode.  (The simulated modules, sensors
# and boxes live on other boards at a site; their state still counts against the 192 KB
# here, so the budget is conservative.)
from boards.sim.bus import ResponderNode, VirtualBus
from boards.sim.devices import CurrentSensor, RelayBox
from boards.sim.manager_shell import ManagerBus, SimManagerShell
from manager_fw import config
from manager_fw.core import ManagerCore
from module_fw.responder import Responder
from shared import protocol as p
from shared.compat import ticks_diff

START_S = 200000000  # 2026-05-04, StringCare seconds


def uid_for(n):
    return bytes([0x5C, 0xA1, 0, 0, (n >> 8) & 0xFF, n & 0xFF, 0x42, n & 0x7F])


def parse_site(obj):
    """The site configuration, parsed by the manager's own parser (frozen on a board,
    so importing it at the top costs its module state, not its code)."""
    import gc

    cfg = config.parse_config(obj)
    gc.collect()
    return cfg


KEY = bytes.fromhex("537472696e67436172652d7465737421")  # the published test key


def _test_module_class():
    from module_fw.state import ModuleState

    class TestModule(ModuleState):
        """A module state the tests set in mV and 0.01 °C (the wire carries µV and m°C)."""

        @property
        def voltage_mv(self):
            return (self.voltage_uv + 500) // 1000

        @voltage_mv.setter
        def voltage_mv(self, mv):
            self.voltage_uv = mv * 1000

        @property
        def temp_cc(self):
            return self.temp_mc // 10

        @temp_cc.setter
        def temp_cc(self, cc):
            self.temp_mc = cc * 10

    return TestModule


class EventList:
    """The core's event log kept in a list (same append() as manager_fw/events.EventLog)."""

    def __init__(self):
        self.items = []

    def append(self, time_s, code, module=0xFFFF, string=0xFF, value=0, arg=0, extra=0):
        self.items.append((time_s - START_S, code, module, string, value, arg, extra))


class HistoryList:
    """The core's history snapshots in a list: (time s after start, mode, voltage µV,
    temperature m°C, Ri nΩ, balance %, state, string current mA) per module, as lists."""

    def __init__(self):
        self.snapshots = []
        self.fail_errno = 0  # > 0: append raises OSError(fail_errno), as a failing store

    def set_thresholds(self, thresholds):
        pass

    def append(self, time_s, mode, voltage_uv, temp_mc, ri_nohm, balance_pct, state, current_ma):
        if self.fail_errno:
            raise OSError(self.fail_errno)
        self.snapshots.append(
            (time_s - START_S, mode, list(voltage_uv), list(temp_mc), list(ri_nohm),
             list(balance_pct), list(state), list(current_ma))
        )  # fmt: skip


def store_file(what, kb):
    import os
    import sys

    from manager_fw.blockdev import FileBlockDevice

    try:
        os.mkdir("build")
    except OSError:
        pass
    path = "build/test-core-%s-%s.bin" % (sys.implementation.name, what)
    try:
        os.remove(path)
    except OSError:
        pass
    return FileBlockDevice(path, kb * 1024)


def merge(base, extra):
    for k in extra:
        if isinstance(extra[k], dict) and isinstance(base.get(k), dict):
            merge(base[k], extra[k])
        else:
            base[k] = extra[k]
    return base


class Site:
    def __init__(self, sizes=(4, 4), config=None, seed=1, voltage_mv=13620, temp_cc=2200,
                 ri_nohm=5000000, history_kb=0, events_kb=0, absent=(),
                 history_list=False, fast_bus=False, event_dev=None, history_dev=None,
                 history_segment_size=8192):  # fmt: skip
        """history_kb / events_kb > 0: the history store / event log on a file of that
        size (else no history, and events in a list: the stores' code then stays out of
        the 192 KB heap).  history_list: the core's snapshots in a list instead.
        fast_bus: modules hear only the manager (boards/sim/manager_shell.ManagerBus),
        for large sites.  event_dev / history_dev: the event log / history store on
        this block device instead (history in segments of history_segment_size)."""
        # Ri and thermal runaway are off unless a test switches them on: a core without
        # them does not load their code (the 192 KB heap)
        obj = {
            "strings": [{"modules": n} for n in sizes],
            "cycle_period_ms": 1000,
            "ri": {"enabled": False},
            "runaway": {"enabled": False},
        }
        if config:
            merge(obj, config)
        self.cfg = parse_site(obj)
        # the core first, on a freshly collected heap: its big tables find room before
        # the many small objects of the simulation fragment it
        import gc

        gc.collect()
        # stores in files: no large contiguous buffer on a 192 KB heap
        self.history_dev = store_file("history", history_kb) if history_kb else history_dev
        self.event_dev = store_file("events", events_kb) if events_kb else event_dev
        self.event_list = None if self.event_dev else EventList()
        self.history_list = HistoryList() if history_list else None
        self.core = ManagerCore(self.cfg, self.history_dev, self.event_dev, START_S,
                                history_segment_size=history_segment_size,
                                event_log=self.event_list, history=self.history_list,
                                site_key=KEY)  # fmt: skip
        lay = self.cfg.layout
        self.bus = (ManagerBus if fast_bus else VirtualBus)(self.cfg.baud, seed)
        self.modules = []
        self.nodes = []
        self.ri_value = []
        self._ri_since = []
        self.ri_starts = []  # (time s after start, module index) of every RI_START seen
        test_module = _test_module_class()
        for i in range(lay.module_count):
            s = test_module(uid_for(i + 1), variant_id=self.cfg.variant)
            s.address = lay.address(i)
            s.key = KEY
            s.voltage_mv = voltage_mv
            s.temp_cc = temp_cc
            for m in range(3):
                s.ri_duration_ms[m] = 2000
            node = ResponderNode(Responder(s))
            self.modules.append(s)
            self.nodes.append(node)
            self.ri_value.append(ri_nohm)
            self._ri_since.append(-1)
            self.bus.attach(node)
            if i in absent:
                self.bus.unplug(node)
        self.sensors = {}
        for k in range(lay.string_count):
            n = self.cfg.current_sensor[k]
            if n:
                dev = CurrentSensor(n, 150)
                self.sensors[k] = dev
                self.bus.attach(ResponderNode(dev))
        self.boxes = {}
        for box in self.cfg.boxes:
            dev = RelayBox(box, clock_ms=self._now_ms, key=KEY)  # its watchdog sees silent time
            self.boxes[box] = dev
            self.bus.attach(ResponderNode(dev))
        self.shell = SimManagerShell(self.core, self.bus, START_S)
        self.shell.hooks.append(self._play_ri)

    # -- time ------------------------------------------------------------------------

    def now_s(self):
        return self.shell.now_s()

    def _now_ms(self):
        return self.shell.now_ms()

    def run_s(self, seconds):
        self.shell.run_s(seconds)

    def run_until_s(self, t):
        self.shell.run_until_s(t)

    def start(self, limit_s=30):
        """Run until the core polls (wake preamble and census done)."""
        end = self.now_s() + limit_s
        while self.core.mode_name() != "running" and self.now_s() < end:
            self.shell.run_ms(100)
            if self.core.mode_name() == "refused":
                return
        self.shell.run_ms(1500)  # a first full cycle

    # -- the modules ---------------------------------------------------------------------

    def unplug(self, i):
        self.bus.unplug(self.nodes[i])

    def replug(self, i):
        self.bus.replug(self.nodes[i])

    def _play_ri(self, shell):
        now = shell.now_ms()
        for i in range(len(self.modules)):
            s = self.modules[i]
            if s.ri_request < 0:
                continue
            if self._ri_since[i] < 0:
                self._ri_since[i] = now
                self.ri_starts.append((shell.now_s() - START_S, i))
            elif ticks_diff(now, self._ri_since[i]) >= s.ri_duration_ms[s.ri_request]:
                self._ri_since[i] = -1
                s.ri_request = -1
                s.ri_state = p.RI_OK
                s.ri_quality = 90
                s.ri_nohm = self.ri_value[i]
                s.ri_done_ms = now
                s.meas_flags |= p.FLAG_RI_RESULT

    # -- what happened ---------------------------------------------------------------------

    def persist(self):
        """What a shell does between steps: write what the core queued for its stores
        (the sim shell does it as it runs; this is for a test that calls the core
        directly).  Bounded: a failing store may keep records queued."""
        for _ in range(1000):
            if not self.core.persist(16) or self.core.master.waiting:
                return

    def events(self, code=None):
        """[(time_s - START_S, code, module, string, value, arg, extra)], oldest first."""
        if self.event_list is not None:
            return [e for e in self.event_list.items if code is None or e[1] == code]
        from manager_fw.events import EventReader

        self.persist()
        out = []
        for e in EventReader(self.event_dev).events():
            if code is None or e.code == code:
                out.append(
                    (e.time_s - START_S, e.code, e.module, e.string, e.value, e.arg, e.extra)
                )
        return out
