"""Generate docs/protocol-vectors.json from an implementation independent of shared/.

This is what an OEM would write from docs/protocol.md alone: ``struct`` for the
layouts and a bit-by-bit CRC driven by the Rocksoft parameters in the JSON header.
The firmware codec (shared/protocol.py) is then tested against these vectors on both
interpreters, so a mistake has to be made twice, the same way, to go unnoticed.

    python -m stringcare.dev.protocol_vectors --check   # the committed file is current
    python -m stringcare.dev.protocol_vectors --write   # regenerate it
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from typing import Any

from stringcare.dev import layout

CRC: dict[str, int] = {
    "width": 16,
    "poly": 0x1021,
    "init": 0xFFFF,
    "refin": False,
    "refout": False,
    "xorout": 0,
}

# name: (code, request layout, reply layout or None); layouts as (field, struct code)
_U = {"u8": "B", "u16": "H", "i16": "h", "u32": "I", "i32": "i", "uid": "8s"}
_MEAS = "voltage_mv:u16 temp_cc:i16 balance_pct:u8 flags:u8"
COMMANDS: dict[str, tuple[int, str, str | None]] = {
    "DISCOVER": (0x01, "slots:u8", "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 "
                 "fw_patch:u8 variant:u8 uid:uid"),
    "READ_MEAS": (0x02, "", _MEAS),
    "POLL_GROUP": (0x03, "first:u16 count:u8", _MEAS),
    "SET_TARGET": (0x04, "first:u16 last:u16 target_mv:u16 flags:u8 timeout_s:u8 "
                   "target_10uv:u8", None),
    "RI_START": (0x05, "method:u8", "method:u8 duration_ms:u16"),
    "RI_READ": (0x06, "", "state:u8 quality:u8 ri_nohm:u32 age_s:u16"),
    "STATUS": (0x07, "", "flags:u16 mode:u8 inhibit:u8 board_temp_cc:i16 uptime_s:u32 "
               "rx_frames:u16 rx_errors:u16"),
    "ADDR_MODE": (0x10, "enter:u8", None),
    "ADDR_OFFER": (0x11, "address:u16", "address:u16 uid:uid"),
    "ADDR_CONFIRM": (0x12, "uid:uid address:u16", "address:u16 uid:uid"),
    "SET_ADDRESS": (0x13, "address:u16", "address:u16"),
    "GET_ADDRESS": (0x14, "", "address:u16 uid:uid"),
    "IDENTIFY": (0x15, "on:u8", "on:u8"),
    "RESET_ADDRESS": (0x16, "magic:u16", ""),
    "MARK": (0x17, "state:u8", "state:u8"),
    "INFO": (0x20, "", "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 "
             "variant:u8 ri_method:u8 store:u8 uid:uid"),
    "CAL_READ": (0x21, "channel:u8", "channel:u8 offset:i32 gain_ppm:i32"),
    "CAL_WRITE": (0x22, "channel:u8 offset:i32 gain_ppm:i32", "channel:u8 offset:i32 gain_ppm:i32"),
    "SET_VARIANT": (0x23, "variant:u8", "variant:u8"),
    "SLEEP": (0x30, "", None),
    "WAKE": (0x31, "", None),
    "CURRENT_READ": (0x40, "", "current_ma:i32 string:u8 flags:u8"),
    "IO_READ": (0x41, "", "relays:u8 inputs:u8"),
    "RELAY_SET": (0x42, "mask:u8 state:u8", "relays:u8 inputs:u8"),
}  # fmt: skip
NAK = (0xFF, "request:u8 error:u8")
MANAGER = 0xFFFE
BROADCAST = 0xFFFF
UID = "5ca1ab1e00c0ffee"


def crc_bitwise(data: bytes, width: int, poly: int, init: int, refin: bool, refout: bool,
                xorout: int) -> int:  # fmt: skip
    """Textbook Rocksoft-model CRC, one bit at a time."""

    def reflect(v: int, bits: int) -> int:
        return int(format(v, "0%db" % bits)[::-1], 2)

    top = 1 << (width - 1)
    mask = (1 << width) - 1
    reg = init
    for byte in data:
        if refin:
            byte = reflect(byte, 8)
        reg ^= byte << (width - 8)
        for _ in range(8):
            reg = ((reg << 1) ^ poly) & mask if reg & top else (reg << 1) & mask
    if refout:
        reg = reflect(reg, width)
    return reg ^ xorout


def crc(data: bytes) -> int:
    return crc_bitwise(
        data, CRC["width"], CRC["poly"], CRC["init"], bool(CRC["refin"]), bool(CRC["refout"]),
        CRC["xorout"],
    )  # fmt: skip


def pack_payload(spec: str, values: dict[str, Any]) -> bytes:
    out = b""
    for item in spec.split():
        name, kind = item.split(":")
        v = values[name]
        out += struct.pack("<" + _U[kind], bytes.fromhex(v) if kind == "uid" else v)
    return out


def frame(dst: int, src: int, cmd: int, seq: int, payload: bytes, version: int = 1) -> bytes:
    body = struct.pack("<BHHBB", (version << 6) | len(payload), dst, src, cmd, seq) + payload
    return b"\xa5" + body + struct.pack("<H", crc(body))


def sample_values(spec: str, seed: int) -> dict[str, Any]:
    """Plausible field values for a layout (fixed, so the file is reproducible)."""
    samples = {
        "slots": 1, "voltage_mv": 13642, "temp_cc": -512 if seed % 2 else 2371,
        "balance_pct": 35, "flags": 0x81, "first": 33, "count": 32, "last": 64,
        "target_mv": 13650, "timeout_s": 30, "method": 2, "duration_ms": 750, "state": 2,
        "quality": 96, "ri_nohm": 4812345, "age_s": 42, "mode": 0, "inhibit": 0,
        "board_temp_cc": 3155, "uptime_s": 86400 * 3 + 17, "rx_frames": 51234,
        "rx_errors": 3, "enter": 1, "address": 17, "uid": UID, "on": 1, "magic": 0x5AFE,
        "device_type": 1, "hw_rev": 2, "fw_major": 0, "fw_minor": 1, "fw_patch": 0,
        "variant": 3, "ri_method": 2, "store": 0, "channel": 0, "offset": -1520,
        "gain_ppm": 2310, "current_ma": -42500, "string": 2, "relays": 0x05, "inputs": 0x02,
        "mask": 0x01, "request": 0x6E, "error": 1, "target_10uv": 37,
    }  # fmt: skip
    if "target_mv" in spec:
        samples["flags"] = 0x01  # SET_TARGET: equalise on
    out = {}
    for item in spec.split():
        name = item.split(":")[0]
        out[name] = samples[name]
    return out


def vectors() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seq = 1
    for name, (code, req, rep) in COMMANDS.items():
        seq += 1
        unicast = name not in ("POLL_GROUP", "SET_TARGET", "ADDR_MODE", "ADDR_OFFER",
                               "ADDR_CONFIRM", "GET_ADDRESS", "SLEEP", "WAKE")  # fmt: skip
        dst = 17 if unicast else BROADCAST
        if name in ("CURRENT_READ",):
            dst = 0xF002
        if name in ("IO_READ", "RELAY_SET"):
            dst = 0xF101
        values = sample_values(req, seq)
        raw = frame(dst, MANAGER, code, seq, pack_payload(req, values))
        out.append(_valid("%s request" % name, raw, dst, MANAGER, code, seq, values))
        if rep is not None:
            src = 0 if name == "ADDR_OFFER" else dst if dst != BROADCAST else 17
            rvalues = sample_values(rep, seq + 1)
            raw = frame(MANAGER, src, code | 0x80, seq, pack_payload(rep, rvalues))
            out.append(_valid("%s reply" % name, raw, MANAGER, src, code | 0x80, seq, rvalues))
    nak = sample_values(NAK[1], 0)
    out.append(_valid("NAK reply (unknown command 0x6E)", frame(MANAGER, 17, NAK[0], 9,
                      pack_payload(NAK[1], nak)), MANAGER, 17, NAK[0], 9, nak))  # fmt: skip
    # Error cases -------------------------------------------------------------------
    good = frame(17, MANAGER, 0x02, 5, b"")
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0x01
    out.append(_invalid("bad CRC (last byte flipped)", bytes(bad_crc), "crc",
                        "drop silently; resynchronise from the byte after SYNC"))  # fmt: skip
    flipped = bytearray(frame(MANAGER, 17, 0x82, 5, pack_payload(_MEAS, sample_values(_MEAS, 1))))
    flipped[9] ^= 0x04
    out.append(_invalid("bad CRC (payload bit flipped)", bytes(flipped), "crc",
                        "drop silently; resynchronise from the byte after SYNC"))  # fmt: skip
    out.append(_invalid("wrong protocol version 2", frame(17, MANAGER, 0x02, 6, b"", version=2),
                        "version", "CRC is valid: skip the whole frame; a manager reports the "
                        "device's protocol version as incompatible"))  # fmt: skip
    v0 = bytearray(good)
    v0[1] = 0x00
    out.append(
        _invalid(
            "version 0 header byte",
            bytes(v0),
            "garbage",
            "0xA5 followed by a version-0 byte is not a frame start: skip the SYNC",
        )
    )
    out.append(_invalid("truncated frame then silence", good[:7], "truncated",
                        "wait for more bytes; when the line goes idle, discard"))  # fmt: skip
    out.append(_invalid("garbage only", bytes([0x00, 0xFF, 0xA5, 0x55, 0x13]), "garbage",
                        "skip bytes until a SYNC that starts a CRC-valid frame"))  # fmt: skip
    bad_len = frame(17, MANAGER, 0x15, 7, b"\x01\x00")
    out.append({
        "name": "IDENTIFY request with a 2-byte payload (bad length)",
        "hex": bad_len.hex(), "valid": True, "error": "bad_length",
        "fields": _fields(17, MANAGER, 0x15, 7, None),
        "receiver": "frame layer accepts it; the module answers unicast requests with NAK "
        "error 2 (bad length), ignores broadcasts",
    })  # fmt: skip
    unknown = frame(17, MANAGER, 0x6E, 8, b"")
    out.append({
        "name": "unknown command 0x6E",
        "hex": unknown.hex(), "valid": True, "error": "unknown_command",
        "fields": _fields(17, MANAGER, 0x6E, 8, None),
        "receiver": "frame layer accepts it; the module answers unicast requests with NAK "
        "error 1 (unknown command), ignores broadcasts",
    })  # fmt: skip
    stream = bytes([0x13, 0x37]) + good + bytes([0xA5]) + frame(3, MANAGER, 0x20, 4, b"")
    out.append({
        "name": "two frames with garbage before and between",
        "hex": stream.hex(), "valid": True, "stream": True, "frames": 2,
        "receiver": "a deframer yields both frames: dst 17 READ_MEAS then dst 3 INFO",
    })  # fmt: skip
    return out


def _fields(dst: int, src: int, cmd: int, seq: int, payload: dict[str, Any] | None):
    out: dict[str, Any] = {"dst": dst, "src": src, "cmd": cmd, "seq": seq}
    if payload is not None:
        out["payload"] = payload
    return out


def _valid(name: str, raw: bytes, dst: int, src: int, cmd: int, seq: int, values):
    return {"name": name, "hex": raw.hex(), "valid": True,
            "fields": _fields(dst, src, cmd, seq, values)}  # fmt: skip


def _invalid(name: str, raw: bytes, error: str, receiver: str):
    return {"name": name, "hex": raw.hex(), "valid": False, "error": error, "receiver": receiver}


def render() -> str:
    """The JSON text: one vector per line, so that a small MicroPython heap can read it
    line by line (the whole file is still ordinary JSON)."""
    header = dict(CRC)
    header["check"] = crc(b"123456789")
    head = json.dumps({"crc": header, "name": "CRC-16/IBM-3740", "protocol_version": 1})
    lines = [head[:-1] + ', "vectors": [']
    vs = vectors()
    for i, v in enumerate(vs):
        lines.append(json.dumps(v, sort_keys=True) + ("," if i + 1 < len(vs) else ""))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help="rewrite the committed file")
    parser.add_argument("--check", action="store_true", help="fail if the file is stale")
    args = parser.parse_args(argv)
    path = layout.repo_root() / "docs" / "protocol-vectors.json"
    text = render()
    if args.write:
        path.write_text(text)
        print("wrote %s (%d vectors)" % (path, len(vectors())))
        return 0
    if args.check:
        if not path.exists() or path.read_text() != text:
            print("%s is stale: run python -m stringcare.dev.protocol_vectors --write" % path)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
