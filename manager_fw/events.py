# The manager's event log: warnings, alarms, configuration changes, discharges,
# addressing, start-ups, each with its time, in its own power-loss-safe ring
# (manager_fw/ring.py) so that a long discharge logged at 10-s intervals in the history
# never pushes events out.
#
# An event is one frame with a 12-byte payload (docs/history.md):
#   0 u8  code (EV_*)
#   1 u8  arg (per code: quantity, configuration item, addressing step, ...)
#   2 u16 module index, 0-based (NO_MODULE = none), little-endian
#   4 u8  string index, 0-based (NO_STRING = none)
#   5 u8  reserved, 0
#   6 i32 value (unit per code), little-endian two's complement
#  10 u16 extra (per code), little-endian
# 22 bytes on the device per event with the frame around it.

from shared.compat import const

# The ring store (manager_fw/ring.py) is imported where a log is opened, not here: code
# that only needs the event codes (the manager core's in-memory log in tests, host
# tools) does not load the store.

KIND_EVENT = const(0x45)  # 'E'
EVENT_PAYLOAD_SIZE = const(12)
EVENT_FRAME_SIZE = const(22)  # with the ring's frame around it
QUEUED_EVENT_SIZE = const(19)  # in the RAM queue (manager_fw/persist.py)
DEFAULT_SEGMENT_SIZE = 4096

NO_MODULE = const(0xFFFF)
NO_STRING = const(0xFF)

# codes; arg / value / extra per code
EV_STARTUP = const(1)  # manager started; value: firmware version as MMmmpp
EV_TIME_SET = const(2)  # clock set; value: the time before (StringCare s)
EV_LEVEL = const(3)  # threshold condition changed; arg: quantity (Q_*), value: reading
#                      in its live unit (µV, m°C, nΩ, spread µV); extra: old << 8 | new
#                      condition (shared.thresholds COND_*)
EV_MODULE_SILENT = const(4)  # a module stopped answering
EV_MODULE_BACK = const(5)  # it answers again; value: seconds it was silent
EV_DISCHARGE_START = const(6)  # value: string current mA (negative = discharge) or 0
EV_DISCHARGE_END = const(7)  # value: duration s; extra: discharge counter
EV_CONFIG = const(8)  # configuration changed; arg: item (manager's numbering); value: new
EV_ADDRESSING = const(9)  # arg: ADDR_*; module: the address concerned
EV_THERMAL_RUNAWAY = const(10)  # arg: RUNAWAY_* below
RUNAWAY_TRIP = const(0)  # breaker tripped; value: rise of the block's excess in the window, m°C
RUNAWAY_RESET = const(1)  # the operator reset a trip (nothing against a block)
RUNAWAY_SUSPECT = const(2)  # a suspect block; value: its excess over the string median, m°C
EV_ALARM_MUTED = const(11)  # buzzer muted by the operator
EV_RI_MEASURED = const(12)  # value: Ri nΩ (offset applied); arg: Ri state (2 = ok)
# codes of the manager core (manager_fw/core.py, docs/manager.md)
EV_CENSUS = const(13)  # start-up census done; value: initialised, extra: not reachable
EV_REFUSED = const(14)  # the core refuses to run; arg: REFUSED_*; module: the first odd one
EV_RELAY = const(15)  # a relay/IO box confirmed a relay change; arg: box; value: relays
#                       after; extra: the relays changed (bit mask)
EV_RI_TREND = const(16)  # Ri rose against the module's own baseline; value: rise %;
#                          arg: 0 warning, 1 alarm
EV_BUS_POWER = const(17)  # arg: 0 SLEEP sent, 1 WAKE preamble done
EV_CHARGE_PHASE = const(18)  # a string's charge phase changed (manager_fw/phases.py);
#                              arg: new phase PH_*, extra: the phase before
EV_RECHARGE_SLOW = const(19)  # a recharge took longer than discharge.recharge_max_s:
#                               float levels back; module: the lowest block, value: its
#                               voltage mV, extra: minutes since the recharge began
EV_STORAGE = const(20)  # a store failed or recovered; arg: STORAGE_*; extra: STORE_*;
#                         value: the OSError's errno (0: not an OSError) or, for
#                         STORAGE_DAMAGED, the number of damaged segments
EV_IMPLAUSIBLE = const(21)  # a module's data cannot be real; arg: IMPLAUSIBLE_*;
#                             module: the module; value: the reading (µV) or 0
EV_RI_STRING = const(22)  # a block's Ri stands out of its string (manager_fw/ri_judge.py);
#                           value: % over the string's median
EV_BLOCK_REPLACED = const(23)  # a new uid at the module's address: a replaced block
EV_RI_BASELINE = const(24)  # value: the baseline nΩ; arg: 0 learned, 1 cleared by the
#                             operator (learned again from the next results), 2 a result
#                             25 % below it (value: that result): a new block, learned again
EV_BALANCE_LIMIT = const(25)  # balancing cannot bring a block to target: it is left out
#                               of the target (manager_fw/balance_limits.py); arg: cause
#                               (1 shorted cell, 2 dried out, 3 undercharged; 0 back in
#                               reach), value: its deficit below the target mV
EV_BLEED_CAP = const(26)  # a string bled balance.max_wh_day: limited to the cap's
#                           average power by the allowance (arg 2), paused (arg 1: even
#                           the band's top bled faster) or resumed (arg 0); value: mWh
#                           bled in the last 24 h
EV_NO_PROBE = const(27)  # the module has no battery probe: its temperature is its
#                          board's, no thermal-runaway evidence (once per module and run);
#                          arg 1: its probe's reading fell faster than a block can cool
#                          (off its block?), value: the fall m°C (once per module and run)
EV_OPERATOR = const(28)  # an operator's command (web interface or `stringcare ctl`); arg:
#                          action (manager_fw/actions.py OP_*), extra: the web user's
#                          number in the users file, or FROM_CONTROL | the Unix uid of
#                          the ctl sender; module/string/value per action
EV_CALIBRATION = const(29)  # a module's calibration changed; arg: channel; value: offset;
#                             extra: gain ppm (manager_fw/integrity.py)
EV_AUTH_REFUSED = const(30)  # a module refused unauthenticated/replayed commands; value:
#                              its refusal count (docs/protocol.md §5a)

EVENT_NAMES = (
    "?",
    "startup",
    "time set",
    "threshold",
    "module silent",
    "module back",
    "discharge start",
    "discharge end",
    "config",
    "addressing",
    "thermal runaway",
    "alarm muted",
    "ri measured",
    "census",
    "refused",
    "relay",
    "ri trend",
    "bus power",
    "charge phase",
    "recharge slow",
    "storage",
    "implausible",
    "ri over string",
    "block replaced",
    "new baseline",
    "balance limit",
    "bleed cap",
    "no battery probe",
    "operator",
    "calibration",
    "auth refused",
)

# EV_REFUSED reasons
REFUSED_HARDWARE = const(1)  # incompatible hardware revisions on one bus
REFUSED_FIRMWARE = const(2)  # a module's firmware major differs from the manager's
REFUSED_PROTOCOL = const(3)  # a device answers in another protocol version
REFUSED_NAMES = ("?", "hardware revision", "firmware version", "protocol version")

# EV_STORAGE: which store (extra) and what happened (arg)
STORE_HISTORY = const(0)
STORE_EVENTS = const(1)
STORE_NAMES = ("history store", "event log")
STORAGE_WRITE_FAILED = const(0)  # a write failed: the store is degraded, writes retried
STORAGE_OPEN_FAILED = const(1)  # could not be opened or created: not recorded
STORAGE_FOREIGN = const(2)  # held a store of another type or geometry
STORAGE_DAMAGED = const(3)  # segments with a damaged header found when it was opened
STORAGE_RECOVERED = const(4)  # writes succeed again after a failure
STORAGE_BEHIND = const(5)  # the queue to the store was full: value records not stored
STORAGE_NAMES = ("write failed", "cannot be opened", "foreign store", "damaged", "recovered",
                 "fell behind")  # fmt: skip

# EV_IMPLAUSIBLE reasons
IMPLAUSIBLE_DUPLICATE = const(0)  # two devices answer as this module
IMPLAUSIBLE_RANGE = const(1)  # a voltage outside the module variant's measuring range
IMPLAUSIBLE_CLEARED = const(2)  # its data is plausible again
IMPLAUSIBLE_NAMES = ("two devices answer as one module", "outside the measuring range",
                     "plausible again")  # fmt: skip

# EV_CONFIG items
CFG_LOADED = const(0)  # value: CRC-16 of the configuration text in use
CFG_FALLBACK = const(1)  # site.json was missing or bad: the last good copy is in use
CFG_SAVED = const(2)  # a new configuration was stored; value: its CRC-16
CONFIG_NAMES = ("loaded", "fallback to last good", "saved")

# EV_ADDRESSING steps
ADDR_START = const(0)
ADDR_ASSIGNED = const(1)
ADDR_DONE = const(2)
ADDR_ERROR = const(3)
ADDR_RESET = const(4)
ADDR_CHANGED = const(5)
ADDRESSING_NAMES = ("start", "assigned", "done", "error", "reset", "changed")


class EventLog:
    """Appends events; also the sink of shared.thresholds.AlarmEvaluator."""

    def __init__(self, device, segment_size=DEFAULT_SEGMENT_SIZE, erase_foreign=False):
        from manager_fw.ring import RING_EVENTS, Ring

        self.ring = Ring(device, RING_EVENTS, segment_size, erase_foreign)
        self.buf = bytearray(EVENT_PAYLOAD_SIZE)
        self.events_written = 0
        self.waiting = None  # deferred writing (queue/service): after enable_queue()

    def _fill(self, code, module, string, value, arg, extra):
        b = self.buf
        b[0] = code & 0xFF
        b[1] = arg & 0xFF
        b[2] = module & 0xFF
        b[3] = (module >> 8) & 0xFF
        b[4] = string & 0xFF
        b[5] = 0
        b[6] = value & 0xFF
        b[7] = (value >> 8) & 0xFF
        b[8] = (value >> 16) & 0xFF
        b[9] = (value >> 24) & 0xFF
        b[10] = extra & 0xFF
        b[11] = (extra >> 8) & 0xFF

    def append(self, time_s, code, module=NO_MODULE, string=NO_STRING, value=0, arg=0, extra=0):
        """Store one event now (allocates nothing)."""
        self._fill(code, module, string, value, arg, extra)
        b = self.buf
        ring = self.ring
        ring.begin(KIND_EVENT, time_s, EVENT_PAYLOAD_SIZE)
        ring.write(b, EVENT_PAYLOAD_SIZE)
        ring.end()
        self.events_written += 1

    def level_changed(self, now_s, module, string, quantity, old, new, value):
        self.append(now_s, EV_LEVEL, module, string, value, quantity, (old << 8) | new)

    # -- deferred: the core queues in its step, the shell writes outside it -----------

    def enable_queue(self, capacity):
        from manager_fw.persist import FrameQueue

        self.waiting = FrameQueue(capacity)

    def pending(self):
        return self.waiting.frames if self.waiting is not None else 0

    def queue(self, time_s, code, module=NO_MODULE, string=NO_STRING, value=0, arg=0, extra=0):
        """Queue one event, no device access; False when the queue is full."""
        q = self.waiting
        if q is None:
            raise ValueError("no queue: call enable_queue() first")
        if not q.begin(KIND_EVENT, time_s, EVENT_PAYLOAD_SIZE):
            return False
        self._fill(code, module, string, value, arg, extra)
        q.write(self.buf, EVENT_PAYLOAD_SIZE)
        q.end()
        return True

    def service(self, max_ops=1):
        """Write queued events: at most max_ops device operations (one block erase or
        one event each); raises what the device raises (that event is given up);
        returns the events still queued."""
        return self.ring.drain(self.waiting, max_ops, self)

    def _drop(self, kind, size):  # Ring.drain's hooks
        return False

    def _written(self, kind):
        self.events_written += 1

    def _failed(self):
        pass

    def discard(self):
        """Give up every queued event (after a failed write); returns how many."""
        return self.waiting.clear() if self.waiting is not None else 0


class Event:
    def __init__(self):
        self.time_s = 0
        self.offset = 0
        self.code = 0
        self.arg = 0
        self.module = NO_MODULE
        self.string = NO_STRING
        self.value = 0
        self.extra = 0

    def copy(self):
        e = Event()
        e.time_s = self.time_s
        e.offset = self.offset
        e.code = self.code
        e.arg = self.arg
        e.module = self.module
        e.string = self.string
        e.value = self.value
        e.extra = self.extra
        return e


class EventReader:
    """Every event of a log, oldest first; problems/notes as in RingReader."""

    def __init__(self, device):
        from manager_fw.ring import RING_EVENTS
        from manager_fw.ring_reader import RingReader

        self.ring = RingReader(device, RING_EVENTS, (KIND_EVENT,))
        self.problems = self.ring.problems
        self.notes = self.ring.notes

    def events(self):
        """Yields one Event updated in place (copy() what you keep)."""
        ev = Event()
        for offset, _kind, time_s, p, length, _gap in self.ring.frames():
            if length != EVENT_PAYLOAD_SIZE:
                self.problems.append(
                    "event at 0x%x has %d payload bytes, not %d; skipped"
                    % (offset, length, EVENT_PAYLOAD_SIZE)
                )
                continue
            ev.time_s = time_s
            ev.offset = offset
            ev.code = p[0]
            ev.arg = p[1]
            ev.module = p[2] | (p[3] << 8)
            ev.string = p[4]
            ev.value = p[6] | (p[7] << 8) | (p[8] << 16) | (((p[9] ^ 0x80) - 0x80) << 24)
            ev.extra = p[10] | (p[11] << 8)
            yield ev

    def latest(self, count):
        """The newest `count` events, oldest first (copies)."""
        out = []
        for ev in self.events():
            out.append(ev.copy())
            if len(out) > count:
                out.pop(0)
        return out
