# Everything about a module that the bus can read or change, as plain attributes.
#
# The responder (module_fw/responder.py) reads and writes it when frames arrive; the
# module core (module_fw/core.py) fills in measurements, runs the button/LED,
# balancing and Ri, and persists what the responder marks dirty.  No I/O here.

from array import array

from shared import protocol as p
from shared import variants
from shared.compat import const

CAL_CHANNELS = const(6)  # docs/protocol.md §8; channel 5: voltage tempco
CAL_TEMPCO = const(5)  # offset: reference board temperature m°C, gain: ppb/K
DEFAULT_BAUD = 115200

# What the responder asks the core to persist (bit set in `dirty`).
DIRTY_ADDRESS = const(1)
DIRTY_CALIBRATION = const(2)
DIRTY_VARIANT = const(4)
DIRTY_KEY = const(8)  # site key or authentication counter floor

# STATUS `mode` byte
MODE_NORMAL = const(0)
MODE_ADDRESSING = const(1)
MODE_IDENTIFY = const(2)
MODE_SLEEP = const(3)
MODE_RESET = const(4)  # 12 s reset: waiting for addressing, not measuring

# STATUS `flags` (16 bit): the MEAS flags in the low byte plus these
STATUS_IDENTIFY_CONFIRMED = const(0x0100)  # identify ended by the button
STATUS_CLAIM_PENDING = const(0x0200)  # button pressed in addressing mode
STATUS_BOARD_HOT = const(0x0400)  # the module's own board at its limit
STATUS_BATTERY_HOT = const(0x0800)  # battery probe above its limit
STATUS_DISCHARGE = const(0x1000)  # string discharging (from the manager or detected)
STATUS_LOW_VOLTAGE = const(0x2000)  # block below the variant's minimum: no bleed
STATUS_OUT_OF_WINDOW = const(0x4000)  # not equalising: outside window / disabled
# STATUS `inhibit` byte: why balancing is stopped = STATUS flag bits 10..14 shifted
# down by 8 (bits 2..6); bits 0, 1 and 7 are always 0 (docs/protocol.md §8)
INHIBIT_MASK = const(0x7C)


class ModuleState:
    def __init__(self, uid: bytes, variant_id: int, hw_rev: int = 1, baud: int = DEFAULT_BAUD):
        if len(uid) != 8:
            raise ValueError("module uid must be 8 bytes")
        self.uid = bytes(uid)
        self.address = p.ADDR_UNADDRESSED
        self.variant_id = variant_id
        self.hw_rev = hw_rev
        self.ri_method = 1  # RI_START method 0 means this one: 1 DC step, 2 AC lock-in
        self.baud = baud
        self.store_flags = 0  # non-zero: store was missing/corrupt, defaults in use
        # Modes
        self.addressing = False
        self.claim_armed = False
        self.identify = False
        self.identify_confirmed = False
        self.sleeping = False
        self.reset_hold = False  # 12 s reset done: no measuring/balancing until addressed
        self.mark = 0  # MARK from the manager: 1 warning, 2 alarm -> LED steady red
        self.mark_ms = 0
        # Latest measurement snapshot (filled by the core)
        self.voltage_uv = 0
        self.temp_mc = 0
        self.board_temp_cc = 0
        self.balance_pct = 0
        self.meas_flags = 0
        self.status_extra = 0  # STATUS_* bits above the MEAS byte, filled by the core
        # Target from the manager
        self.target_uv = 0  # 10 uV resolution (SET_TARGET)
        # the variant's plausible float range: the module never equalises towards a
        # target outside it (the core updates it when the variant changes)
        v = variants.by_id(variant_id)
        self.target_min_uv = v.target_min_uv
        self.target_max_uv = v.target_max_uv
        self.target_flags = 0
        self.target_timeout_ms = 0
        self.target_rx_ms = 0
        self.target_received = False
        # Ri
        self.ri_request = -1  # method requested by RI_START, -1 none
        self.ri_busy = False
        self.ri_state = p.RI_NONE
        self.ri_quality = 0
        self.ri_nohm = 0
        self.ri_done_ms = 0
        self.ri_duration_ms = array("H", [0, 0, 0])  # by method: default, DC, AC
        # Calibration per channel: offset (channel unit) and gain error in ppm
        self.cal_offset = array("l", [0] * CAL_CHANNELS)
        self.cal_gain_ppm = array("l", [0] * CAL_CHANNELS)
        # Authentication (shared/auth.py): the site key learnt with physical presence
        # (addressing button, or USB), the counter floor (last accepted counter) and
        # the count of refused unauthenticated or replayed commands
        self.key: bytes | None = None
        self.ctr_hi = 0
        self.ctr_lo = 0
        self.auth_refused = 0
        # Bookkeeping
        self.dirty = 0
        self.attention = False
        self.rx_frames = 0
        self.rx_errors = 0
        self.uptime_s = 0
        self.last_rx_ms = 0
        self.polled_ms = 0
        self.ever_polled = False

    def mode(self) -> int:
        if self.sleeping:
            return MODE_SLEEP
        if self.addressing:
            return MODE_ADDRESSING
        if self.reset_hold:
            return MODE_RESET
        if self.identify:
            return MODE_IDENTIFY
        return MODE_NORMAL
