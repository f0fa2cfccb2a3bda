# StringCare module bus, the messages: addresses, commands, error codes, payload
# layouts and their field encoders, slot timing, and whole frames encoded or decoded.
# Sans-I/O.  The contract is docs/protocol.md; docs/protocol-vectors.json holds its
# test vectors.  The frame layer under it (the frame's layout and constants, CRC-16,
# Frame, the stream Deframer, Endpoint) is shared/protocol_frame.py; this file names
# those too (protocol.X).
#
# Encoding writes into caller-owned buffers and allocates nothing.

from shared.compat import const
from shared.protocol_frame import (  # noqa: F401 - their one home; protocol.X still names them
    CRC_INIT,
    CRC_LEN,
    FRAME_MAX,
    HEADER_LEN,
    OVERHEAD,
    PAYLOAD_MAX,
    REPLY,
    SYNC,
    VERSION,
    Deframer,
    Endpoint,
    Frame,
    copy_bytes,
    copy_bytes_py,
    crc16,
    crc16_py,
    get_i16,
    get_i32,
    get_u16,
    get_u24,
    get_u32,
)

# Addresses
ADDR_UNADDRESSED = const(0)
ADDR_MODULE_MIN = const(1)
ADDR_MODULE_MAX = const(999)
ADDR_CURRENT_SENSOR_BASE = const(0xF000)  # + string 1..8 (DIP switches)
ADDR_RELAY_BOX_BASE = const(0xF100)  # + box 1..15
ADDR_MANAGER = const(0xFFFE)
ADDR_BROADCAST = const(0xFFFF)

# Device types (DISCOVER / INFO)
DEVICE_MODULE = const(1)
DEVICE_CURRENT_SENSOR = const(2)
DEVICE_RELAY_BOX = const(3)
DEVICE_MANAGER = const(16)

# Commands (requests; a reply carries CMD | REPLY)
CMD_DISCOVER = const(0x01)
CMD_READ_MEAS = const(0x02)
CMD_POLL_GROUP = const(0x03)
CMD_SET_TARGET = const(0x04)
CMD_RI_START = const(0x05)
CMD_RI_READ = const(0x06)
CMD_STATUS = const(0x07)
CMD_ADDR_MODE = const(0x10)
CMD_ADDR_OFFER = const(0x11)
CMD_ADDR_CONFIRM = const(0x12)
CMD_SET_ADDRESS = const(0x13)
CMD_GET_ADDRESS = const(0x14)
CMD_IDENTIFY = const(0x15)
CMD_RESET_ADDRESS = const(0x16)
CMD_MARK = const(0x17)
CMD_INFO = const(0x20)
CMD_CAL_READ = const(0x21)
CMD_CAL_WRITE = const(0x22)
CMD_SET_VARIANT = const(0x23)
CMD_SET_KEY = const(0x24)
CMD_SLEEP = const(0x30)
CMD_WAKE = const(0x31)
CMD_CURRENT_READ = const(0x40)
CMD_IO_READ = const(0x41)
CMD_RELAY_SET = const(0x42)
CMD_NAK = const(0xFF)  # reply only: the request could not be executed

# NAK error codes
ERR_UNKNOWN_COMMAND = const(1)
ERR_BAD_LENGTH = const(2)
ERR_BAD_VALUE = const(3)
ERR_BUSY = const(4)
ERR_NOT_ALLOWED = const(5)
ERR_NOT_AUTHENTIC = const(6)  # MAC wrong, counter not fresh, or the module has no key

# MEAS reply (READ_MEAS, POLL_GROUP), 6 bytes:
#   0  u32 LE: bits 0..21 voltage in 10 uV (0..41 943.03 mV), bits 22..31 temperature
#      in 0.2 degC steps from -40.0 degC (0..1023: -40.0..+164.6 degC)
#   4  u8 balance_pct (0..100)
#   5  u8 flags (below)
MEAS_LEN = const(6)
MEAS_VOLTAGE_MAX_UV = const(41943030)  # (2**22 - 1) * 10 uV
MEAS_TEMP_MIN_MC = const(-40000)
MEAS_TEMP_STEP_MC = const(200)
MEAS_TEMP_MAX_MC = const(164600)  # -40000 + 1023 * 200
FLAG_BALANCING = const(0x01)  # bleed load is on (duty > 0)
FLAG_TARGET_STALE = const(0x02)  # no fresh target: balancing stopped
FLAG_HOT = const(0x04)  # thermal derating or stop (board or battery)
FLAG_RI_RESULT = const(0x08)  # a new Ri result is waiting (RI_READ)
FLAG_ATTENTION = const(0x10)  # an event for the manager: read STATUS
FLAG_DEFAULTS = const(0x20)  # persistent store was missing/corrupt: defaults in use
FLAG_RANGE = const(0x40)  # block voltage outside the variant's measuring range
FLAG_PROBE = const(0x80)  # temperature comes from the external probe

# SET_TARGET payload (the one definition: put_set_target() writes it, the module reads
# these offsets): first u16, last u16, target u24 in 10 uV, flags u8, timeout_s u8,
# then the authentication trailer.
ST_FIRST = const(0)
ST_LAST = const(2)
ST_TARGET = const(4)
ST_FLAGS = const(7)
ST_TIMEOUT = const(8)
SET_TARGET_FIELDS = const(9)
TARGET_MAX_UV = const(167772150)  # (2**24 - 1) * 10 uV

# Authentication trailer of the commands that change persistent state or make a module
# draw current (docs/protocol.md, "Authentication"): counter u48 LE, then the first
# MAC_LEN bytes of HMAC-SHA256(site key, frame bytes VERLEN .. counter).
CTR_LEN = const(6)
MAC_LEN = const(6)
AUTH_LEN = const(12)
KEY_LEN = const(16)

# SET_TARGET flags
TARGET_EQUALISE = const(0x01)  # balancing allowed for this range
TARGET_DISCHARGE = const(0x02)  # string is discharging: never bleed

# RI_READ states
RI_NONE = const(0)
RI_BUSY = const(1)
RI_OK = const(2)
RI_LOW_SIGNAL = const(3)
RI_CLIPPED = const(4)
RI_NOISY = const(5)
RI_INHIBITED = const(6)
RI_NO_EXCITATION = const(7)
RI_INCOMPLETE = const(8)

# RI_START methods
RI_METHOD_DEFAULT = const(0)
RI_METHOD_DC = const(1)
RI_METHOD_AC = const(2)

# CAL_WRITE limits (shared/measure.py applies them): +-5 % gain, +-0.5 V offset on the
# voltage, +-10 degC on a temperature, a tempco reference temperature -40..+85 degC
CAL_GAIN_PPM_LIMIT = const(50000)
CAL_OFFSET_LIMIT = const(500000)
CAL_TEMP_OFFSET_LIMIT_MC = const(10000)
CAL_TEMPCO_REF_MIN_MC = const(-40000)
CAL_TEMPCO_REF_MAX_MC = const(85000)

# MARK states: what the manager's thresholds say about this module (LED steady red)
MARK_OK = const(0)
MARK_WARNING = const(1)
MARK_ALARM = const(2)

# POLL_GROUP timing
GROUP_MAX = const(64)
LEAD_MIN_US = const(2000)  # first slot 2 ms after the request: time to parse it
LEAD_MIN_CHARS = const(4)
GUARD_CHARS = const(2)  # idle time after each reply inside its slot
SLOT_CHARS = const(18)  # POLL_GROUP slot: a MEAS reply (16 bytes) plus the guard
DISCOVER_SLOT_CHARS = const(26)  # DISCOVER slot: a 24-byte reply plus the guard


class ProtocolError(Exception):
    """A frame or payload that does not match docs/protocol.md (the only error raised)."""


def char_ns(baud: int) -> int:
    """Duration of one 8N1 character (10 bits) in nanoseconds, rounded up."""
    return (10000000000 + baud - 1) // baud


def wire_us(nbytes: int, baud: int) -> int:
    """Time nbytes take on the wire, µs rounded up."""
    return (nbytes * 10000000 + baud - 1) // baud


def group_lead_us(baud: int) -> int:
    lead = wire_us(LEAD_MIN_CHARS, baud)
    return lead if lead > LEAD_MIN_US else LEAD_MIN_US


def chars_us(k: int, chars: int, baud: int) -> int:
    """ceil(k * chars * Tc) in µs, exact for every k (no accumulated rounding).

    k * chars * 10**7 / baud in small ints: the whole µs of one step times k, plus the
    remainders summed before they are rounded (k * r < k * baud stays below 2**30).
    """
    per = chars * 10000000
    q = per // baud
    r = per - q * baud
    return k * q + (k * r + baud - 1) // baud


def group_slot_start_us(index: int, baud: int) -> int:
    """When reply `index` of a group starts, µs after the request's last stop bit:
    L + index * 18 Tc, rounded up to whole µs (index 0..64; 64 is the window end)."""
    return group_lead_us(baud) + chars_us(index, SLOT_CHARS, baud)


def discover_slot_start_us(index: int, baud: int) -> int:
    """When DISCOVER slot `index` starts: L + index * 26 Tc, rounded up to whole µs."""
    return group_lead_us(baud) + chars_us(index, DISCOVER_SLOT_CHARS, baud)


# --------------------------------------------------------------------------- fields


# The put_* encoders refuse a value their field cannot hold (ProtocolError naming the
# value and the range) instead of wrapping it: 70000 in a u16 is an error, not 4464.


def _range(value: int, low: int, high: int, what: str) -> None:
    if value < low or value > high:
        raise ProtocolError("%s %d outside %d..%d" % (what, value, low, high))


def put_u16(buf, off: int, value: int) -> None:
    if value < 0 or value > 0xFFFF:
        _range(value, 0, 0xFFFF, "u16 value")
    buf[off] = value & 0xFF
    buf[off + 1] = value >> 8


def put_i16(buf, off: int, value: int) -> None:
    if value < -0x8000 or value > 0x7FFF:
        _range(value, -0x8000, 0x7FFF, "i16 value")
    buf[off] = value & 0xFF
    buf[off + 1] = (value >> 8) & 0xFF


def put_u24(buf, off: int, value: int) -> None:
    if value < 0 or value > 0xFFFFFF:
        _range(value, 0, 0xFFFFFF, "u24 value")
    buf[off] = value & 0xFF
    buf[off + 1] = (value >> 8) & 0xFF
    buf[off + 2] = value >> 16


def put_u32(buf, off: int, value: int) -> None:
    if value < 0 or value > 0xFFFFFFFF:
        _range(value, 0, 0xFFFFFFFF, "u32 value")
    buf[off] = value & 0xFF
    buf[off + 1] = (value >> 8) & 0xFF
    buf[off + 2] = (value >> 16) & 0xFF
    buf[off + 3] = (value >> 24) & 0xFF


def put_i32(buf, off: int, value: int) -> None:
    if value < -0x80000000 or value > 0x7FFFFFFF:
        _range(value, -0x80000000, 0x7FFFFFFF, "i32 value")
    buf[off] = value & 0xFF
    buf[off + 1] = (value >> 8) & 0xFF
    buf[off + 2] = (value >> 16) & 0xFF
    buf[off + 3] = (value >> 24) & 0xFF


def put_set_target(buf, first: int, last: int, target_uv: int, flags: int, timeout_s: int):
    """The SET_TARGET fields into buf[8:17] (payload offsets ST_*); returns their length.

    target_uv is sent in 10 µV steps (rounded to the nearest).  Raises ProtocolError on
    a value the layout cannot carry.
    """
    if not ADDR_MODULE_MIN <= first <= last <= ADDR_MODULE_MAX:
        raise ProtocolError("SET_TARGET range %d..%d outside 1..999" % (first, last))
    if target_uv < 0 or target_uv > TARGET_MAX_UV:
        _range(target_uv, 0, TARGET_MAX_UV, "target_uv")
    if flags < 0 or flags > 0xFF or timeout_s < 0 or timeout_s > 0xFF:
        raise ProtocolError("SET_TARGET flags %d / timeout %d outside 0..255" % (flags, timeout_s))
    o = HEADER_LEN
    put_u16(buf, o + ST_FIRST, first)
    put_u16(buf, o + ST_LAST, last)
    put_u24(buf, o + ST_TARGET, (target_uv + 5) // 10)
    buf[o + ST_FLAGS] = flags
    buf[o + ST_TIMEOUT] = timeout_s
    return SET_TARGET_FIELDS


def target_uv_of(frame) -> int:
    """The target of a SET_TARGET frame in µV (a multiple of 10)."""
    return get_u24(frame.buf, frame.off + ST_TARGET) * 10


def meas_voltage_uv(buf, off: int) -> int:
    """Block voltage of a MEAS payload at buf[off], µV (10 µV resolution)."""
    return (buf[off] | (buf[off + 1] << 8) | ((buf[off + 2] & 0x3F) << 16)) * 10


def meas_temp_mc(buf, off: int) -> int:
    """Temperature of a MEAS payload at buf[off], m°C (0.2 °C resolution)."""
    return ((buf[off + 2] >> 6) | (buf[off + 3] << 2)) * MEAS_TEMP_STEP_MC + MEAS_TEMP_MIN_MC


# --------------------------------------------------------------------------- encode


def encode_header(buf, dst: int, src: int, cmd: int, seq: int, length: int) -> None:
    """SYNC and header (bytes 0..7) of a frame with a payload of `length` bytes.

    Raises ProtocolError on a field out of its range (addresses 0..0xFFFF, cmd and seq
    0..255, length 0..63).
    """
    if (dst | src) & ~0xFFFF or (cmd | seq) & ~0xFF or length & ~0x3F:
        # (one test for all: a negative value has high bits set too)
        raise ProtocolError(
            "frame field out of range: dst 0x%x, src 0x%x (0..0xFFFF), cmd %d, seq %d "
            "(0..255), payload length %d (0..%d)" % (dst, src, cmd, seq, length, PAYLOAD_MAX)
        )
    buf[0] = SYNC
    buf[1] = (VERSION << 6) | length
    buf[2] = dst & 0xFF
    buf[3] = dst >> 8
    buf[4] = src & 0xFF
    buf[5] = src >> 8
    buf[6] = cmd
    buf[7] = seq


def finish_frame(buf, length: int) -> int:
    """Append the CRC to a frame whose header and payload are in buf; return its size."""
    end = HEADER_LEN + length
    crc = crc16(buf, 1, end)
    buf[end] = crc & 0xFF
    buf[end + 1] = crc >> 8
    return end + CRC_LEN


def encode_frame(buf, dst: int, src: int, cmd: int, seq: int, length: int) -> int:
    """Complete a frame whose payload is already in buf[8:8+length]; return its size.

    buf must hold at least OVERHEAD + length bytes.  Raises ProtocolError on a field
    out of its range (encode_header).
    """
    encode_header(buf, dst, src, cmd, seq, length)
    return finish_frame(buf, length)


def encode_meas(
    buf,
    dst: int,
    src: int,
    cmd: int,
    seq: int,
    voltage_uv: int,
    temp_mc: int,
    balance_pct: int,
    flags: int,
) -> int:
    """A MEAS reply (READ_MEAS or POLL_GROUP) into buf; returns its size (16).

    Raises ProtocolError for a value the layout cannot carry (the module saturates its
    readings into MEAS range first: Responder.meas_reply).
    """
    if not (
        0 <= voltage_uv <= MEAS_VOLTAGE_MAX_UV
        and MEAS_TEMP_MIN_MC <= temp_mc <= MEAS_TEMP_MAX_MC
        and 0 <= balance_pct <= 100
        and not flags & ~0xFF
    ):
        _range(voltage_uv, 0, MEAS_VOLTAGE_MAX_UV, "voltage_uv")
        _range(temp_mc, MEAS_TEMP_MIN_MC, MEAS_TEMP_MAX_MC, "temp_mc")
        _range(balance_pct, 0, 100, "balance_pct")
        _range(flags, 0, 0xFF, "flags")
    v = (voltage_uv + 5) // 10
    t = (temp_mc - MEAS_TEMP_MIN_MC + MEAS_TEMP_STEP_MC // 2) // MEAS_TEMP_STEP_MC
    buf[8] = v & 0xFF
    buf[9] = (v >> 8) & 0xFF
    buf[10] = (v >> 16) | ((t & 3) << 6)
    buf[11] = t >> 2
    buf[12] = balance_pct
    buf[13] = flags
    return encode_frame(buf, dst, src, cmd, seq, MEAS_LEN)


def encode_bytes(dst: int, src: int, cmd: int, seq: int, payload=b"") -> bytes:
    """Allocating convenience for host tools and tests: the whole frame as bytes."""
    buf = bytearray(OVERHEAD + len(payload))
    buf[HEADER_LEN : HEADER_LEN + len(payload)] = payload
    encode_frame(buf, dst, src, cmd, seq, len(payload))
    return bytes(buf)


# --------------------------------------------------------------------------- decode


def decode_frame(data) -> Frame:
    """Decode exactly one complete frame held in data (host tools, tests).

    Raises ProtocolError naming what is wrong: sync, version, length, CRC.
    """
    n = len(data)
    if n < OVERHEAD:
        raise ProtocolError("frame shorter than the 10-byte minimum")
    if data[0] != SYNC:
        raise ProtocolError("first byte is not SYNC 0xA5")
    length = data[1] & 0x3F
    if n != OVERHEAD + length:
        raise ProtocolError("frame length does not match its LEN field")
    crc = crc16(data, 1, HEADER_LEN + length)
    if crc != get_u16(data, HEADER_LEN + length):
        raise ProtocolError("CRC mismatch")
    version = data[1] >> 6
    if version != VERSION:
        raise ProtocolError("unsupported protocol version")
    d = Deframer()  # the one place a frame's fields are read (Deframer.poll)
    d.feed(data)
    frame = d.poll()
    assert frame is not None
    return frame
