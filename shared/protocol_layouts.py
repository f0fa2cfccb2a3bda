# Payload layouts of every command, as data: "name:type name:type ...".
# Types: u8, u16, i16, u24, u32, i32 (little-endian), ctr (u48, the authentication
# counter), uid (8 bytes), mac (protocol.MAC_LEN bytes), key (protocol.KEY_LEN bytes).
# docs/protocol.md shows the same tables (a test keeps them equal); the vectors and the
# manager's generic decoder use this table.  Module firmware does not import it: the
# module encodes its few replies with fixed offsets (shared/protocol.py).
#
# Key: (command, is_reply).  A command absent with is_reply=True gets no reply.

from shared import protocol as p

MEAS = "volt_temp:u32 balance_pct:u8 flags:u8"
AUTH = " ctr:ctr mac:mac"  # the trailer of an authenticated request (shared/auth.py)

LAYOUTS = {
    (p.CMD_DISCOVER, False): "slots:u8",
    (p.CMD_DISCOVER, True): "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 "
    "variant:u8 uid:uid",
    (p.CMD_READ_MEAS, False): "",
    (p.CMD_READ_MEAS, True): MEAS,
    (p.CMD_POLL_GROUP, False): "first:u16 count:u8",
    (p.CMD_POLL_GROUP, True): MEAS,
    (p.CMD_SET_TARGET, False): "first:u16 last:u16 target_10uv:u24 flags:u8 timeout_s:u8" + AUTH,
    (p.CMD_RI_START, False): "method:u8" + AUTH,
    (p.CMD_RI_START, True): "method:u8 duration_ms:u16",
    (p.CMD_RI_READ, False): "",
    (p.CMD_RI_READ, True): "state:u8 quality:u8 ri_nohm:u32 age_s:u16",
    (p.CMD_STATUS, False): "",
    (p.CMD_STATUS, True): "flags:u16 mode:u8 inhibit:u8 board_temp_cc:i16 uptime_s:u32 "
    "rx_frames:u16 rx_errors:u16 auth_refused:u16",
    (p.CMD_ADDR_MODE, False): "enter:u8",
    (p.CMD_ADDR_OFFER, False): "address:u16",
    (p.CMD_ADDR_OFFER, True): "address:u16 uid:uid",
    (p.CMD_ADDR_CONFIRM, False): "uid:uid address:u16 key:key",
    (p.CMD_ADDR_CONFIRM, True): "address:u16 uid:uid",
    (p.CMD_SET_ADDRESS, False): "address:u16" + AUTH,
    (p.CMD_SET_ADDRESS, True): "address:u16",
    (p.CMD_GET_ADDRESS, False): "",
    (p.CMD_GET_ADDRESS, True): "address:u16 uid:uid",
    (p.CMD_IDENTIFY, False): "on:u8",
    (p.CMD_IDENTIFY, True): "on:u8",
    (p.CMD_RESET_ADDRESS, False): AUTH.strip(),
    (p.CMD_RESET_ADDRESS, True): "",
    (p.CMD_MARK, False): "state:u8",
    (p.CMD_MARK, True): "state:u8",
    (p.CMD_INFO, False): "",
    (p.CMD_INFO, True): "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 "
    "variant:u8 ri_method:u8 store:u8 uid:uid key_state:u8 auth_refused:u16 auth_ctr:ctr",
    (p.CMD_CAL_READ, False): "channel:u8",
    (p.CMD_CAL_READ, True): "channel:u8 offset:i32 gain_ppm:i32",
    (p.CMD_CAL_WRITE, False): "channel:u8 offset:i32 gain_ppm:i32" + AUTH,
    (p.CMD_CAL_WRITE, True): "channel:u8 offset:i32 gain_ppm:i32",
    (p.CMD_SET_VARIANT, False): "variant:u8" + AUTH,
    (p.CMD_SET_VARIANT, True): "variant:u8",
    (p.CMD_SET_KEY, False): "wrapped_key:key" + AUTH,
    (p.CMD_SET_KEY, True): "key_check:u32",
    (p.CMD_SLEEP, False): "",
    (p.CMD_WAKE, False): "",
    (p.CMD_CURRENT_READ, False): "",
    (p.CMD_CURRENT_READ, True): "current_ma:i32 string:u8 flags:u8",
    (p.CMD_IO_READ, False): "",
    (p.CMD_IO_READ, True): "relays:u8 inputs:u8",
    (p.CMD_RELAY_SET, False): "mask:u8 state:u8" + AUTH,
    (p.CMD_RELAY_SET, True): "relays:u8 inputs:u8",
    (p.CMD_NAK, True): "request:u8 error:u8",
}

SIZES = {"u8": 1, "u16": 2, "i16": 2, "u24": 3, "u32": 4, "i32": 4, "ctr": 6, "uid": 8,
         "mac": p.MAC_LEN, "key": p.KEY_LEN}  # fmt: skip
HEX = ("uid", "mac", "key")  # carried as hex strings

COMMAND_NAMES = {
    p.CMD_DISCOVER: "DISCOVER",
    p.CMD_READ_MEAS: "READ_MEAS",
    p.CMD_POLL_GROUP: "POLL_GROUP",
    p.CMD_SET_TARGET: "SET_TARGET",
    p.CMD_RI_START: "RI_START",
    p.CMD_RI_READ: "RI_READ",
    p.CMD_STATUS: "STATUS",
    p.CMD_ADDR_MODE: "ADDR_MODE",
    p.CMD_ADDR_OFFER: "ADDR_OFFER",
    p.CMD_ADDR_CONFIRM: "ADDR_CONFIRM",
    p.CMD_SET_ADDRESS: "SET_ADDRESS",
    p.CMD_GET_ADDRESS: "GET_ADDRESS",
    p.CMD_IDENTIFY: "IDENTIFY",
    p.CMD_RESET_ADDRESS: "RESET_ADDRESS",
    p.CMD_MARK: "MARK",
    p.CMD_INFO: "INFO",
    p.CMD_CAL_READ: "CAL_READ",
    p.CMD_CAL_WRITE: "CAL_WRITE",
    p.CMD_SET_VARIANT: "SET_VARIANT",
    p.CMD_SET_KEY: "SET_KEY",
    p.CMD_SLEEP: "SLEEP",
    p.CMD_WAKE: "WAKE",
    p.CMD_CURRENT_READ: "CURRENT_READ",
    p.CMD_IO_READ: "IO_READ",
    p.CMD_RELAY_SET: "RELAY_SET",
    p.CMD_NAK: "NAK",
}


def layout(cmd: int, reply: bool):
    """[(name, type), ...] for a command's request or reply; None when there is none."""
    spec = LAYOUTS.get((cmd, reply))
    if spec is None:
        return None
    fields = []
    for item in spec.split():
        name, kind = item.split(":")
        fields.append((name, kind))
    return fields


def payload_size(cmd: int, reply: bool) -> int:
    fields = layout(cmd, reply)
    if fields is None:
        return -1
    n = 0
    for _name, kind in fields:
        n += SIZES[kind]
    return n


def authenticated(cmd: int) -> bool:
    """Does this request end with the authentication trailer?"""
    spec = LAYOUTS.get((cmd, False))
    return spec is not None and spec.endswith("mac:mac")


def unpack(cmd: int, reply: bool, buf, off: int, length: int) -> dict:
    """Decode a payload into {name: value} (uid, mac, key as hex digits).  Allocates.

    Raises ProtocolError when the command is unknown or the length is wrong.
    """
    fields = layout(cmd, reply)
    if fields is None:
        raise p.ProtocolError("unknown command 0x%02x" % cmd)
    want = payload_size(cmd, reply)
    if want != length:
        raise p.ProtocolError(
            "bad payload length %d: command 0x%02x takes %d" % (length, cmd, want)
        )
    out = {}
    for name, kind in fields:
        if kind == "u8":
            out[name] = buf[off]
        elif kind == "u16":
            out[name] = p.get_u16(buf, off)
        elif kind == "i16":
            out[name] = p.get_i16(buf, off)
        elif kind == "u24":
            out[name] = p.get_u24(buf, off)
        elif kind == "u32":
            out[name] = p.get_u32(buf, off)
        elif kind == "i32":
            out[name] = p.get_i32(buf, off)
        elif kind == "ctr":
            out[name] = p.get_u24(buf, off) + (p.get_u24(buf, off + 3) << 24)
        else:
            out[name] = "".join("%02x" % buf[off + i] for i in range(SIZES[kind]))
        off += SIZES[kind]
    return out


_LIMITS = {"u8": (0, 0xFF), "u16": (0, 0xFFFF), "i16": (-0x8000, 0x7FFF),
           "u24": (0, 0xFFFFFF), "u32": (0, 0xFFFFFFFF), "i32": (-0x80000000, 0x7FFFFFFF),
           "ctr": (0, 0xFFFFFFFFFFFF)}  # fmt: skip


def pack(cmd: int, reply: bool, values: dict) -> bytes:
    """Encode {name: value} into a payload (uid, mac, key as hex digits).  Allocates.

    Raises ProtocolError naming the field when a value does not fit its type.
    """
    fields = layout(cmd, reply)
    if fields is None:
        raise p.ProtocolError("unknown command 0x%02x" % cmd)
    out = bytearray(payload_size(cmd, reply))
    off = 0
    for name, kind in fields:
        size = SIZES[kind]
        if name not in values and kind in ("ctr", "mac"):
            off += size  # the trailer is left zero: encode_request() signs it
            continue
        v = values[name]
        if kind in HEX:
            if len(v) != 2 * size:
                raise p.ProtocolError("%s needs %d hex digits, got %r" % (name, 2 * size, v))
            for i in range(size):
                out[off + i] = int(v[2 * i : 2 * i + 2], 16)
        else:
            low, high = _LIMITS[kind]
            if v < low or v > high:
                raise p.ProtocolError(
                    "%s = %d does not fit %s (%d..%d)" % (name, v, kind, low, high)
                )
            u = v & ((1 << (8 * size)) - 1)
            for i in range(size):
                out[off + i] = (u >> (8 * i)) & 0xFF
        off += size
    return bytes(out)


def encode_request(dst: int, cmd: int, seq: int, values: dict, signer=None,
                   src: int = p.ADDR_MANAGER) -> bytes:  # fmt: skip
    """A whole request frame from {name: value} (host tools, tests).  Allocates.

    An authenticated command is signed by signer (shared/auth.Signer: the next counter
    and the MAC); without a signer its trailer stays zero - what a device without the
    key would send, and every module refuses.
    """
    payload = pack(cmd, False, values)
    if not authenticated(cmd) or signer is None:
        return p.encode_bytes(dst, src, cmd, seq, payload)
    n = len(payload) - p.AUTH_LEN
    buf = bytearray(p.FRAME_MAX)
    buf[p.HEADER_LEN : p.HEADER_LEN + n] = payload[:n]
    p.encode_header(buf, dst, src, cmd, seq, len(payload))
    signer.sign_request(buf, n)
    return bytes(buf[: p.finish_frame(buf, len(payload))])
