# Payload layouts of every command, as data: "name:type name:type ...".
# Types: u8, u16, i16, u32, i32 (little-endian), uid (8 bytes).
# docs/protocol.md shows the same tables (a test keeps them equal); the vectors and the
# manager's generic decoder use this table.  Module firmware does not import it: the
# module encodes its few replies with fixed offsets (shared/protocol.py).
#
# Key: (command, is_reply).  A command absent with is_reply=True gets no reply.

from shared import protocol as p

MEAS = "voltage_mv:u16 temp_cc:i16 balance_pct:u8 flags:u8"

LAYOUTS = {
    (p.CMD_DISCOVER, False): "slots:u8",
    (p.CMD_DISCOVER, True): "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 "
    "variant:u8 uid:uid",
    (p.CMD_READ_MEAS, False): "",
    (p.CMD_READ_MEAS, True): MEAS,
    (p.CMD_POLL_GROUP, False): "first:u16 count:u8",
    (p.CMD_POLL_GROUP, True): MEAS,
    (p.CMD_SET_TARGET, False): (
        "first:u16 last:u16 target_mv:u16 flags:u8 timeout_s:u8 target_10uv:u8"
    ),
    (p.CMD_RI_START, False): "method:u8",
    (p.CMD_RI_START, True): "method:u8 duration_ms:u16",
    (p.CMD_RI_READ, False): "",
    (p.CMD_RI_READ, True): "state:u8 quality:u8 ri_nohm:u32 age_s:u16",
    (p.CMD_STATUS, False): "",
    (p.CMD_STATUS, True): "flags:u16 mode:u8 inhibit:u8 board_temp_cc:i16 uptime_s:u32 "
    "rx_frames:u16 rx_errors:u16",
    (p.CMD_ADDR_MODE, False): "enter:u8",
    (p.CMD_ADDR_OFFER, False): "address:u16",
    (p.CMD_ADDR_OFFER, True): "address:u16 uid:uid",
    (p.CMD_ADDR_CONFIRM, False): "uid:uid address:u16",
    (p.CMD_ADDR_CONFIRM, True): "address:u16 uid:uid",
    (p.CMD_SET_ADDRESS, False): "address:u16",
    (p.CMD_SET_ADDRESS, True): "address:u16",
    (p.CMD_GET_ADDRESS, False): "",
    (p.CMD_GET_ADDRESS, True): "address:u16 uid:uid",
    (p.CMD_IDENTIFY, False): "on:u8",
    (p.CMD_IDENTIFY, True): "on:u8",
    (p.CMD_RESET_ADDRESS, False): "magic:u16",
    (p.CMD_RESET_ADDRESS, True): "",
    (p.CMD_MARK, False): "state:u8",
    (p.CMD_MARK, True): "state:u8",
    (p.CMD_INFO, False): "",
    (p.CMD_INFO, True): "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 "
    "variant:u8 ri_method:u8 store:u8 uid:uid",
    (p.CMD_CAL_READ, False): "channel:u8",
    (p.CMD_CAL_READ, True): "channel:u8 offset:i32 gain_ppm:i32",
    (p.CMD_CAL_WRITE, False): "channel:u8 offset:i32 gain_ppm:i32",
    (p.CMD_CAL_WRITE, True): "channel:u8 offset:i32 gain_ppm:i32",
    (p.CMD_SET_VARIANT, False): "variant:u8",
    (p.CMD_SET_VARIANT, True): "variant:u8",
    (p.CMD_SLEEP, False): "",
    (p.CMD_WAKE, False): "",
    (p.CMD_CURRENT_READ, False): "",
    (p.CMD_CURRENT_READ, True): "current_ma:i32 string:u8 flags:u8",
    (p.CMD_IO_READ, False): "",
    (p.CMD_IO_READ, True): "relays:u8 inputs:u8",
    (p.CMD_RELAY_SET, False): "mask:u8 state:u8",
    (p.CMD_RELAY_SET, True): "relays:u8 inputs:u8",
    (p.CMD_NAK, True): "request:u8 error:u8",
}

SIZES = {"u8": 1, "u16": 2, "i16": 2, "u32": 4, "i32": 4, "uid": 8}

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


def unpack(cmd: int, reply: bool, buf, off: int, length: int) -> dict:
    """Decode a payload into {name: value} (uid as 16 hex digits).  Allocates.

    Raises ProtocolError when the command is unknown or the length is wrong.
    """
    fields = layout(cmd, reply)
    if fields is None:
        raise p.ProtocolError("unknown command")
    if payload_size(cmd, reply) != length:
        raise p.ProtocolError("bad payload length")
    out = {}
    for name, kind in fields:
        if kind == "u8":
            out[name] = buf[off]
        elif kind == "u16":
            out[name] = p.get_u16(buf, off)
        elif kind == "i16":
            out[name] = p.get_i16(buf, off)
        elif kind == "u32":
            out[name] = p.get_u32(buf, off)
        elif kind == "i32":
            out[name] = p.get_i32(buf, off)
        else:
            out[name] = "".join("%02x" % buf[off + i] for i in range(8))
        off += SIZES[kind]
    return out


def pack(cmd: int, reply: bool, values: dict) -> bytes:
    """Encode {name: value} into a payload (uid as 16 hex digits).  Allocates."""
    fields = layout(cmd, reply)
    if fields is None:
        raise p.ProtocolError("unknown command")
    out = bytearray(payload_size(cmd, reply))
    off = 0
    for name, kind in fields:
        v = values[name]
        if kind == "u8":
            out[off] = v & 0xFF
        elif kind in ("u16", "i16"):
            p.put_u16(out, off, v)
        elif kind in ("u32", "i32"):
            p.put_u32(out, off, v)
        else:
            for i in range(8):
                out[off + i] = int(v[2 * i : 2 * i + 2], 16)
        off += SIZES[kind]
    return bytes(out)
