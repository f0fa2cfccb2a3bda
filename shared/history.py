# History record format: one *snapshot* holds every module of the system at one time.
#
# Two payload kinds (the frame around them, with time, length and CRC, is the ring
# store's: manager_fw/ring.py; docs/history.md describes both to the bit):
#
#   KEY   absolute values of every module, the string layout and (optionally) the
#         thresholds in force; decodable on its own.
#   DELTA each value as the difference to the previous snapshot, in a tiered
#         variable-length code: a block whose voltage moved 1 mV costs 4 bits, an
#         unchanged Ri 0 bits (it sits under a shared "state or Ri changed" flag).
#
# Stored units (history units): voltage mV (0..32767), temperature centi-°C
# (-32768..32767), Ri nΩ (0..2**26-1, 0 = not measured), balance level % (0..100),
# module state code (0..15), string current mA (24-bit signed; CURRENT_NONE = no
# sensor).  The encoder takes the manager's live units (µV, milli-°C, nΩ, %, code, mA)
# and rounds them; the decoder gives history units.
#
# Pure and dual-target: integers only, every intermediate below 2**30; the encoder
# allocates nothing per snapshot (it streams through a BitWriter with a small buffer).

from array import array

from shared.compat import const, div_round, zeros
from shared.history_bits import (  # noqa: F401 - their one home; history.X still names them
    BitReader,
    BitWriter,
    put_tiered,
)
from shared.history_cadence import (  # noqa: F401 - their one home; history.X still names them
    CURRENT_NONE,
    INTERVAL_BOOST_S,
    INTERVAL_DISCHARGE_S,
    INTERVAL_FLOAT_S,
    INTERVAL_RECOVERY_S,
    MODE_BOOST,
    MODE_DISCHARGE,
    MODE_FLOAT,
    MODE_NAMES,
    MODE_RECOVERY,
    RECOVERY_DURATION_S,
    STATE_ALARM,
    STATE_NORMAL,
    STATE_SILENT,
    STATE_WARNING,
    HistoryCadence,
    record_interval_s,
)
from shared.thresholds import OFF_HIGH, OFF_LOW, ThresholdSet

FORMAT_VERSION = const(1)

KIND_KEY = const(0x4B)  # 'K'
KIND_DELTA = const(0x44)  # 'D'

MODE_MAX = const(15)
STATE_MAX = const(15)

# absolute field widths in bits
VOLTAGE_BITS = const(15)
TEMP_BITS = const(16)
BALANCE_BITS = const(7)
STATE_BITS = const(4)
RI_BITS = const(26)
CURRENT_BITS = const(24)

VOLTAGE_MAX_MV = const(32767)
TEMP_MIN_CC = const(-32768)
TEMP_MAX_CC = const(32767)
RI_MAX_NOHM = const((1 << 26) - 1)
BALANCE_MAX_PCT = const(100)
CURRENT_MIN_MA = const(-(1 << 23) + 1)
CURRENT_MAX_MA = const((1 << 23) - 1)

# tiered delta codes: tier i is i one-bits, a zero bit, then tiers[i] bits of the
# zigzag-coded delta minus the tier's base; all ones (len(tiers) of them) is the escape,
# followed by the absolute value in the field's width.
VOLTAGE_TIERS = (0, 2, 4, 7)
TEMP_TIERS = (0, 3, 5, 8)
BALANCE_TIERS = (0, 2, 4)
CURRENT_TIERS = (0, 4, 8, 12)

# thresholds carried in key frames, 16-bit mV / centi-°C fields and 26-bit nΩ; these
# values mean "off"
TH_OFF_LOW_MV = const(0)
TH_OFF_HIGH_MV = const(0xFFFF)
TH_OFF_HIGH_NOHM = const((1 << 26) - 1)

KEY_FLAG_THRESHOLDS = const(1)


# ---------------------------------------------------------------------------- values


def voltage_mv_of(voltage_uv):
    v = (voltage_uv + 500) // 1000
    if v < 0:
        return 0
    if v > VOLTAGE_MAX_MV:
        return VOLTAGE_MAX_MV
    return v


def temp_cc_of(temp_mc):
    t = div_round(temp_mc, 10)
    if t < TEMP_MIN_CC:
        return TEMP_MIN_CC
    if t > TEMP_MAX_CC:
        return TEMP_MAX_CC
    return t


def ri_of(ri_nohm):
    if ri_nohm < 0:
        return 0
    if ri_nohm > RI_MAX_NOHM:
        return RI_MAX_NOHM
    return ri_nohm


def balance_of(balance_pct):
    if balance_pct < 0:
        return 0
    if balance_pct > BALANCE_MAX_PCT:
        return BALANCE_MAX_PCT
    return balance_pct


def current_of(current_ma):
    if current_ma == CURRENT_NONE:
        return CURRENT_NONE
    if current_ma < CURRENT_MIN_MA:
        return CURRENT_MIN_MA
    if current_ma > CURRENT_MAX_MA:
        return CURRENT_MAX_MA
    return current_ma


def _th_mv(value_uv, off_value):
    if value_uv <= -0x3FFFFFFF + 1 or value_uv >= 0x3FFFFFFF - 1:
        return off_value
    v = (value_uv + 500) // 1000
    if v < 0:
        return 0
    if v > 0xFFFE:
        return 0xFFFE
    return v


def _th_cc(value_mc):
    return temp_cc_of(value_mc) & 0xFFFF


def _th_nohm(value_nohm):
    if value_nohm >= RI_MAX_NOHM:
        return TH_OFF_HIGH_NOHM
    return ri_of(value_nohm)


def _put_thresholds(bw, t):
    bw.put(_th_mv(t.voltage_low_alarm_uv, TH_OFF_LOW_MV), 16)
    bw.put(_th_mv(t.voltage_low_warning_uv, TH_OFF_LOW_MV), 16)
    bw.put(_th_mv(t.voltage_high_warning_uv, TH_OFF_HIGH_MV), 16)
    bw.put(_th_mv(t.voltage_high_alarm_uv, TH_OFF_HIGH_MV), 16)
    bw.put(_th_mv(t.discharge_low_alarm_uv, TH_OFF_LOW_MV), 16)
    bw.put(_th_mv(t.discharge_low_warning_uv, TH_OFF_LOW_MV), 16)
    bw.put(_th_cc(t.temp_low_alarm_mc), 16)
    bw.put(_th_cc(t.temp_low_warning_mc), 16)
    bw.put(_th_cc(t.temp_high_warning_mc), 16)
    bw.put(_th_cc(t.temp_high_alarm_mc), 16)
    bw.put_wide(_th_nohm(t.ri_warning_nohm), RI_BITS)
    bw.put_wide(_th_nohm(t.ri_alarm_nohm), RI_BITS)
    bw.put(_th_mv(t.spread_warning_uv, TH_OFF_HIGH_MV), 16)
    bw.put(_th_mv(t.spread_alarm_uv, TH_OFF_HIGH_MV), 16)


def _get_thresholds(r):
    def mv(value, off):
        if value == off:
            return OFF_HIGH if off == TH_OFF_HIGH_MV else OFF_LOW
        return value * 1000

    def cc(value):
        if value >= 0x8000:
            value -= 0x10000
        if value <= TEMP_MIN_CC:
            return OFF_LOW
        if value >= TEMP_MAX_CC:
            return OFF_HIGH
        return value * 10

    t = ThresholdSet()
    t.voltage_low_alarm_uv = mv(r.get(16), TH_OFF_LOW_MV)
    t.voltage_low_warning_uv = mv(r.get(16), TH_OFF_LOW_MV)
    t.voltage_high_warning_uv = mv(r.get(16), TH_OFF_HIGH_MV)
    t.voltage_high_alarm_uv = mv(r.get(16), TH_OFF_HIGH_MV)
    t.discharge_low_alarm_uv = mv(r.get(16), TH_OFF_LOW_MV)
    t.discharge_low_warning_uv = mv(r.get(16), TH_OFF_LOW_MV)
    t.temp_low_alarm_mc = cc(r.get(16))
    t.temp_low_warning_mc = cc(r.get(16))
    t.temp_high_warning_mc = cc(r.get(16))
    t.temp_high_alarm_mc = cc(r.get(16))
    ri_w = r.get_wide(RI_BITS)
    ri_a = r.get_wide(RI_BITS)
    t.ri_warning_nohm = OFF_HIGH if ri_w == TH_OFF_HIGH_NOHM else ri_w
    t.ri_alarm_nohm = OFF_HIGH if ri_a == TH_OFF_HIGH_NOHM else ri_a
    t.spread_warning_uv = mv(r.get(16), TH_OFF_HIGH_MV)
    t.spread_alarm_uv = mv(r.get(16), TH_OFF_HIGH_MV)
    return t


# ---------------------------------------------------------------------------- encoder


class SnapshotEncoder:
    """Encodes snapshots against the previous one it encoded (its *base*).

    Holds the base in history units: 10 bytes per module (arrays indexed by module).
    encode(..., update=False) is the dry run that only sizes the payload; with
    update=True the base becomes this snapshot.
    """

    def __init__(self, string_sizes):
        self.set_layout(string_sizes)

    def set_layout(self, string_sizes):
        count = 0
        for size in string_sizes:
            if not (0 < size <= 0xFFFF):
                raise ValueError(
                    "string sizes must be 1..65535 modules, got %r" % (list(string_sizes),)
                )
            count += size
        if not (0 < len(string_sizes) <= 255) or count > 0xFFFF:
            raise ValueError(
                "history holds 1..255 strings and up to 65535 modules, got %d strings, "
                "%d modules" % (len(string_sizes), count)
            )
        self.string_sizes = array("H", string_sizes)
        self.string_count = len(string_sizes)
        self.module_count = count
        self.base_mv = zeros("H", count)
        self.base_cc = zeros("h", count)
        self.base_ri = zeros("i", count)
        self.base_balance = bytearray(count)
        self.base_state = bytearray(count)
        self.base_current = zeros("i", self.string_count)

    def encode(
        self,
        bw,
        key,
        mode,
        voltage_uv,
        temp_mc,
        ri_nohm,
        balance_pct,
        state,
        current_ma,
        thresholds,
        update,
    ):
        """Write one payload into bw (already reset); returns its length in bytes.

        thresholds: None, or a list with one ThresholdSet per string (key frames only).
        """
        m = self.module_count
        if not (0 <= mode <= MODE_MAX):
            raise ValueError("history mode must be 0..%d, got %d" % (MODE_MAX, mode))
        if key:
            self._put_key_head(bw, mode, thresholds)
        else:
            bw.put(mode, 8)
        self._put_currents(bw, key, current_ma, update)
        base_mv = self.base_mv
        base_cc = self.base_cc
        base_ri = self.base_ri
        base_balance = self.base_balance
        base_state = self.base_state
        i = 0
        while i < m:
            v = voltage_mv_of(voltage_uv[i])
            t = temp_cc_of(temp_mc[i])
            b = balance_of(balance_pct[i])
            st = state[i]
            if not (0 <= st <= STATE_MAX):
                raise ValueError("module %d: state code %d does not fit 4 bits" % (i + 1, st))
            ri = ri_of(ri_nohm[i])
            if key:
                bw.put(v, VOLTAGE_BITS)
                bw.put(t & 0xFFFF, TEMP_BITS)
                bw.put(b, BALANCE_BITS)
                bw.put(st, STATE_BITS)
                bw.put_wide(ri, RI_BITS)
            else:
                put_tiered(bw, v - base_mv[i], VOLTAGE_TIERS, v, VOLTAGE_BITS)
                put_tiered(bw, t - base_cc[i], TEMP_TIERS, t, TEMP_BITS)
                put_tiered(bw, b - base_balance[i], BALANCE_TIERS, b, BALANCE_BITS)
                ri_changed = ri != base_ri[i]
                if st != base_state[i] or ri_changed:
                    bw.put(1, 1)
                    bw.put(st, STATE_BITS)
                    if ri_changed:
                        bw.put(1, 1)
                        bw.put_wide(ri, RI_BITS)
                    else:
                        bw.put(0, 1)
                else:
                    bw.put(0, 1)
            if update:
                base_mv[i] = v
                base_cc[i] = t
                base_balance[i] = b
                base_state[i] = st
                base_ri[i] = ri
            i += 1
        return bw.finish()

    def _put_currents(self, bw, key, current_ma, update):
        """Each string's current: absolute in a key frame, else against the base."""
        base_current = self.base_current
        for s in range(self.string_count):
            c = current_of(current_ma[s])
            if key:
                bw.put_wide(c & 0xFFFFFF, CURRENT_BITS)
            else:
                put_tiered(bw, c - base_current[s], CURRENT_TIERS, c, CURRENT_BITS)
            if update:
                base_current[s] = c

    def _put_key_head(self, bw, mode, thresholds):
        """A key frame's head: format, mode, layout and the thresholds (or none)."""
        s_count = self.string_count
        bw.put(FORMAT_VERSION, 8)
        bw.put(mode, 8)
        bw.put(self.module_count, 16)
        bw.put(s_count, 8)
        for s in range(s_count):
            bw.put(self.string_sizes[s], 16)
        if thresholds is None:
            bw.put(0, 8)
            return
        bw.put(KEY_FLAG_THRESHOLDS, 8)
        prev = None
        for s in range(s_count):
            t = thresholds[s]
            if t is prev:
                bw.put(1, 1)
            else:
                bw.put(0, 1)
                _put_thresholds(bw, t)
            prev = t


# ---------------------------------------------------------------------------- decoder


class Snapshot:
    """One decoded snapshot in history units; arrays indexed by module (0-based).

    A reader reuses one Snapshot and updates it in place: copy what you keep.
    """

    def __init__(self):
        self.time_s = 0
        self.mode = MODE_FLOAT
        self.key = False
        self.offset = 0
        self.valid = False  # a key frame has been decoded since the last gap
        self.module_count = 0
        self.string_count = 0
        self.string_sizes = array("H")
        self.voltage_mv = array("H")
        self.temp_cc = array("h")
        self.ri_nohm = array("i")
        self.balance_pct = bytearray()
        self.state = bytearray()
        self.string_current_ma = array("i")
        self.thresholds = None  # None or a list of ThresholdSet, one per string

    def resize(self, module_count, string_count):
        if module_count != self.module_count:
            self.voltage_mv = zeros("H", module_count)
            self.temp_cc = zeros("h", module_count)
            self.ri_nohm = zeros("i", module_count)
            self.balance_pct = bytearray(module_count)
            self.state = bytearray(module_count)
            self.module_count = module_count
        if string_count != self.string_count:
            self.string_current_ma = zeros("i", string_count)
            self.string_sizes = zeros("H", string_count)
            self.string_count = string_count

    def string_of(self, module):
        s = 0
        first = 0
        while s < self.string_count:
            first += self.string_sizes[s]
            if module < first:
                return s
            s += 1
        raise IndexError("module %d is not in the layout" % module)

    def label(self, module):
        """Per-string label of a 0-based module: '4S2' = block 4 of string 2."""
        s = 0
        first = 0
        while s < self.string_count:
            size = self.string_sizes[s]
            if module < first + size:
                return "%dS%d" % (module - first + 1, s + 1)
            first += size
            s += 1
        raise IndexError("module %d is not in the layout" % module)


def decode_payload(kind, buf, nbytes, snap, reader=None):
    """Decode one KEY or DELTA payload into snap; raises ValueError on a bad payload.

    A DELTA needs the snapshot it was encoded against in snap (snap.valid); the caller
    clears snap.valid at every gap in the stream.
    """
    r = reader if reader is not None else BitReader()
    r.reset(buf, nbytes)
    if kind == KIND_KEY:
        _decode_key(r, snap)
    elif kind == KIND_DELTA:
        _decode_delta(r, snap)
    else:
        raise ValueError("not a history payload kind: 0x%02x" % kind)


def _decode_key(r, snap):
    version = r.get(8)
    if version != FORMAT_VERSION:
        raise ValueError(
            "key frame of format version %d; this reader knows version %d"
            % (version, FORMAT_VERSION)
        )
    mode = r.get(8)
    m = r.get(16)
    s_count = r.get(8)
    if m == 0 or s_count == 0:
        raise ValueError("key frame with %d modules in %d strings" % (m, s_count))
    snap.resize(m, s_count)
    total = 0
    for s in range(s_count):
        size = r.get(16)
        snap.string_sizes[s] = size
        total += size
    if total != m:
        raise ValueError("string sizes add up to %d, not the %d modules" % (total, m))
    flags = r.get(8)
    if flags & KEY_FLAG_THRESHOLDS:
        ths = []  # type: list
        for s in range(s_count):
            if r.get(1) and s > 0:
                ths.append(ths[s - 1])
            else:
                ths.append(_get_thresholds(r))
        snap.thresholds = ths
    else:
        snap.thresholds = None
    for s in range(s_count):
        snap.string_current_ma[s] = r.get_signed(CURRENT_BITS)
    for i in range(m):
        snap.voltage_mv[i] = r.get(VOLTAGE_BITS)
        snap.temp_cc[i] = r.get_signed(TEMP_BITS)
        b = r.get(BALANCE_BITS)
        if b > BALANCE_MAX_PCT:
            raise ValueError("module %d: balance level %d %% > 100" % (i + 1, b))
        snap.balance_pct[i] = b
        snap.state[i] = r.get(STATE_BITS)
        snap.ri_nohm[i] = r.get_wide(RI_BITS)
    snap.mode = mode
    snap.key = True
    snap.valid = True


def _decode_delta(r, snap):
    if not snap.valid:
        raise ValueError("delta frame without the key frame it builds on")
    snap.mode = r.get(8)
    for s in range(snap.string_count):
        d = r.get_tiered(CURRENT_TIERS)
        if r.escaped:
            snap.string_current_ma[s] = r.get_signed(CURRENT_BITS)
        else:
            c = snap.string_current_ma[s] + d
            if not (CURRENT_NONE <= c <= CURRENT_MAX_MA):
                raise ValueError("string %d: current out of range after delta" % (s + 1))
            snap.string_current_ma[s] = c
    for i in range(snap.module_count):
        d = r.get_tiered(VOLTAGE_TIERS)
        v = r.get(VOLTAGE_BITS) if r.escaped else snap.voltage_mv[i] + d
        d = r.get_tiered(TEMP_TIERS)
        t = r.get_signed(TEMP_BITS) if r.escaped else snap.temp_cc[i] + d
        d = r.get_tiered(BALANCE_TIERS)
        b = r.get(BALANCE_BITS) if r.escaped else snap.balance_pct[i] + d
        if not (0 <= v <= VOLTAGE_MAX_MV and TEMP_MIN_CC <= t <= TEMP_MAX_CC):
            raise ValueError("module %d: voltage or temperature out of range after delta" % (i + 1))
        if not (0 <= b <= BALANCE_MAX_PCT):
            raise ValueError("module %d: balance level %d out of range after delta" % (i + 1, b))
        snap.voltage_mv[i] = v
        snap.temp_cc[i] = t
        snap.balance_pct[i] = b
        if r.get(1):
            snap.state[i] = r.get(STATE_BITS)
            if r.get(1):
                snap.ri_nohm[i] = r.get_wide(RI_BITS)
    snap.key = False
