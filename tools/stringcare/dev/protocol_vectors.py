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
import hashlib
import hmac
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

# name: (code, request layout, reply layout or None); layouts as (field, type)
_U = {"u8": "B", "u16": "H", "i16": "h", "u32": "I", "i32": "i"}
_SIZES = {"u24": 3, "ctr": 6, "uid": 8, "mac": 6, "key": 16}
_MEAS = "volt_temp:u32 balance_pct:u8 flags:u8"
_AUTH = " ctr:ctr mac:mac"
COMMANDS: dict[str, tuple[int, str, str | None]] = {
    "DISCOVER": (0x01, "slots:u8", "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 "
                 "fw_patch:u8 variant:u8 uid:uid"),
    "READ_MEAS": (0x02, "", _MEAS),
    "POLL_GROUP": (0x03, "first:u16 count:u8", _MEAS),
    "SET_TARGET": (0x04, "first:u16 last:u16 target_10uv:u24 flags:u8 timeout_s:u8" + _AUTH,
                   None),
    "RI_START": (0x05, "method:u8" + _AUTH, "method:u8 duration_ms:u16"),
    "RI_READ": (0x06, "", "state:u8 quality:u8 ri_nohm:u32 age_s:u16"),
    "STATUS": (0x07, "", "flags:u16 mode:u8 inhibit:u8 board_temp_cc:i16 uptime_s:u32 "
               "rx_frames:u16 rx_errors:u16 auth_refused:u16"),
    "ADDR_MODE": (0x10, "enter:u8", None),
    "ADDR_OFFER": (0x11, "address:u16", "address:u16 uid:uid"),
    "ADDR_CONFIRM": (0x12, "uid:uid address:u16 key:key", "address:u16 uid:uid"),
    "SET_ADDRESS": (0x13, "address:u16" + _AUTH, "address:u16"),
    "GET_ADDRESS": (0x14, "", "address:u16 uid:uid"),
    "IDENTIFY": (0x15, "on:u8", "on:u8"),
    "RESET_ADDRESS": (0x16, _AUTH.strip(), ""),
    "MARK": (0x17, "state:u8", "state:u8"),
    "INFO": (0x20, "", "device_type:u8 hw_rev:u8 fw_major:u8 fw_minor:u8 fw_patch:u8 "
             "variant:u8 ri_method:u8 store:u8 uid:uid key_state:u8 auth_refused:u16 "
             "auth_ctr:ctr"),
    "CAL_READ": (0x21, "channel:u8", "channel:u8 offset:i32 gain_ppm:i32"),
    "CAL_WRITE": (0x22, "channel:u8 offset:i32 gain_ppm:i32" + _AUTH,
                  "channel:u8 offset:i32 gain_ppm:i32"),
    "SET_VARIANT": (0x23, "variant:u8" + _AUTH, "variant:u8"),
    "SET_KEY": (0x24, "wrapped_key:key" + _AUTH, "key_check:u32"),
    "SLEEP": (0x30, "", None),
    "WAKE": (0x31, "", None),
    "CURRENT_READ": (0x40, "", "current_ma:i32 string:u8 flags:u8"),
    "IO_READ": (0x41, "", "relays:u8 inputs:u8"),
    "RELAY_SET": (0x42, "mask:u8 state:u8" + _AUTH, "relays:u8 inputs:u8"),
}  # fmt: skip
NAK = (0xFF, "request:u8 error:u8")
MANAGER = 0xFFFE
BROADCAST = 0xFFFF
UID = "5ca1ab1e00c0ffee"
VERSION = 2
# The published test key: vectors and simulations only.  A site's key is random
# (manager_fw/sitekey.py); never install this one.
TEST_KEY_HEX = "537472696e67436172652d7465737421"  # "StringCare-test!"
MAC_LEN = 6


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
    """The payload bytes; a `mac` field is left zero (sign() fills it in)."""
    out = b""
    for item in spec.split():
        name, kind = item.split(":")
        if kind == "mac":
            out += bytes(MAC_LEN)
            continue
        v = values[name]
        if kind in ("uid", "key"):
            out += bytes.fromhex(v)
        elif kind in ("u24", "ctr"):
            out += int(v).to_bytes(_SIZES[kind], "little")
        else:
            out += struct.pack("<" + _U[kind], v)
    return out


def frame(dst: int, src: int, cmd: int, seq: int, payload: bytes, version: int = VERSION,
          signed: bool = False, key: bytes | None = None) -> bytes:  # fmt: skip
    """A whole frame.  signed: the payload ends with counter and MAC; the MAC is
    HMAC-SHA256(key, VERLEN .. counter) truncated to 6 bytes."""
    body = struct.pack("<BHHBB", (version << 6) | len(payload), dst, src, cmd, seq) + payload
    if signed:
        k = key if key is not None else bytes.fromhex(TEST_KEY_HEX)
        mac = hmac.new(k, body[:-MAC_LEN], hashlib.sha256).digest()[:MAC_LEN]
        body = body[:-MAC_LEN] + mac
    return b"\xa5" + body + struct.pack("<H", crc(body))


def meas_word(voltage_uv: int, temp_mc: int) -> int:
    """The MEAS u32: bits 0-21 voltage in 10 µV, bits 22-31 temperature in 0.2 °C steps
    from -40.0 °C (docs/protocol.md, READ_MEAS)."""
    return round(voltage_uv / 10) | (round((temp_mc + 40000) / 200) << 22)


def sample_values(spec: str, seed: int) -> dict[str, Any]:
    """Plausible field values for a layout (fixed, so the file is reproducible)."""
    samples = {
        "slots": 1, "volt_temp": meas_word(13642370, -5200 if seed % 2 else 23800),
        "balance_pct": 35, "flags": 0x81, "first": 33, "count": 32, "last": 64,
        "target_10uv": 1365037, "timeout_s": 30, "method": 2, "duration_ms": 750,
        "state": 2, "quality": 96, "ri_nohm": 4812345, "age_s": 42, "mode": 0,
        "inhibit": 0x10, "board_temp_cc": 3155, "uptime_s": 86400 * 3 + 17,
        "rx_frames": 51234, "rx_errors": 3, "auth_refused": 2, "enter": 1, "address": 17,
        "uid": UID, "on": 1, "device_type": 1, "hw_rev": 2, "fw_major": 0, "fw_minor": 1,
        "fw_patch": 0, "variant": 3, "ri_method": 2, "store": 0, "key_state": 1,
        "auth_ctr": 0x0102030405 + seed, "channel": 0, "offset": -1520, "gain_ppm": 2310,
        "current_ma": -42500, "string": 2, "relays": 0x05, "inputs": 0x02, "mask": 0x01,
        "request": 0x6E, "error": 1, "ctr": 0x0000010000 + seed,
        "key": "00112233445566778899aabbccddeeff",
        "wrapped_key": "0f1e2d3c4b5a69788796a5b4c3d2e1f0", "key_check": 0x1234ABCD,
    }  # fmt: skip
    if "target_10uv" in spec:
        samples["flags"] = 0x01  # SET_TARGET: equalise on
    out = {}
    for item in spec.split():
        name = item.split(":")[0]
        if name != "mac":
            out[name] = samples[name]
    return out


def _with_mac(raw: bytes, values: dict[str, Any]) -> dict[str, Any]:
    """values plus the MAC as the frame carries it (hex)."""
    out = dict(values)
    out["mac"] = raw[-2 - MAC_LEN : -2].hex()
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
        signed = req.endswith("mac:mac")
        raw = frame(dst, MANAGER, code, seq, pack_payload(req, values), signed=signed)
        if signed:
            values = _with_mac(raw, values)
        out.append(_valid("%s request" % name, raw, dst, MANAGER, code, seq, values))
        if rep is not None:
            src = 0 if name == "ADDR_OFFER" else dst if dst != BROADCAST else 17
            rvalues = sample_values(rep, seq + 1)
            raw = frame(MANAGER, src, code | 0x80, seq, pack_payload(rep, rvalues))
            v = _valid("%s reply" % name, raw, MANAGER, src, code | 0x80, seq, rvalues)
            if rep == _MEAS:
                w = rvalues["volt_temp"]
                v["decoded"] = {"voltage_uv": (w & 0x3FFFFF) * 10,
                                "temp_mc": (w >> 22) * 200 - 40000}  # fmt: skip
            out.append(v)
    nak = sample_values(NAK[1], 0)
    out.append(_valid("NAK reply (unknown command 0x6E)", frame(MANAGER, 17, NAK[0], 9,
                      pack_payload(NAK[1], nak)), MANAGER, 17, NAK[0], 9, nak))  # fmt: skip
    out += _auth_vectors()
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
    out.append(_invalid("protocol version 1 (the previous version)",
                        frame(17, MANAGER, 0x02, 6, b"", version=1),
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


def _auth_vectors() -> list[dict[str, Any]]:
    """Authentication and edge cases a receiver must refuse (docs/protocol.md §6).
    Module 17, key = the test key, counter floor 0x10000 before each case."""
    out: list[dict[str, Any]] = []
    spec = COMMANDS["CAL_WRITE"][1]
    values = {"channel": 3, "offset": 1500, "gain_ppm": 0, "ctr": 0x10001}
    good = frame(17, MANAGER, 0x22, 40, pack_payload(spec, values), signed=True)
    out.append(_refusal("CAL_WRITE authenticated (accepted)", good, "accepted", 0,
                        "MAC right, counter 0x10001 above the floor: stored, reply"))  # fmt: skip
    out.append(_refusal("CAL_WRITE replayed (counter not above the floor)", good, "replayed",
                        6, "the floor is now 0x10001: NAK 6, refusal counted",
                        replay=True))  # fmt: skip
    forged = frame(17, MANAGER, 0x22, 41, pack_payload(spec, dict(values, ctr=0x10002)),
                   signed=True, key=bytes(16))  # fmt: skip
    out.append(_refusal("CAL_WRITE under another key", forged, "bad_mac", 6,
                        "MAC wrong: NAK 6, refusal counted, nothing stored"))  # fmt: skip
    hot = frame(
        17,
        MANAGER,
        0x22,
        42,
        pack_payload(spec, dict(values, offset=-10001, ctr=0x10003)),
        signed=True,
    )
    out.append(_refusal("CAL_WRITE temperature offset -10.001 °C", hot, "bad_value", 3,
                        "authentic, but a temperature offset beyond 10 °C: NAK 3"))  # fmt: skip
    rst = frame(BROADCAST, MANAGER, 0x16, 43, bytes(12))
    out.append(_refusal("RESET_ADDRESS broadcast without the key", rst, "bad_mac", -1,
                        "MAC wrong: ignored (broadcast, no NAK), refusal counted"))  # fmt: skip
    st_spec = COMMANDS["SET_TARGET"][1]
    st_values = {"first": 1, "last": 64, "target_10uv": 1304547, "flags": 1, "timeout_s": 30,
                 "ctr": 0x10004}  # fmt: skip
    st = bytearray(frame(BROADCAST, MANAGER, 0x04, 44, pack_payload(st_spec, st_values),
                         signed=True))  # fmt: skip
    st[1] -= 1  # one LEN bit: 21 -> 20 bytes, CRC recomputed as a colliding error would
    body = bytes(st[1:-3])
    cut = b"\xa5" + body + struct.pack("<H", crc(body))
    out.append(
        _refusal(
            "SET_TARGET one byte short (LEN bit flipped)",
            cut,
            "bad_length",
            -1,
            "every command has one exact length: ignored, counted as an error",
        )
    )
    pg = frame(
        BROADCAST, MANAGER, 0x03, 45, pack_payload("first:u16 count:u8", {"first": 1, "count": 65})
    )
    out.append(_refusal("POLL_GROUP with count 65", pg, "bad_value", -1,
                        "count outside 1..64: nobody answers"))  # fmt: skip
    dc = frame(BROADCAST, MANAGER, 0x01, 46, b"\x00")
    out.append(
        _refusal(
            "DISCOVER broadcast with slots 0",
            dc,
            "bad_value",
            -1,
            "slots 0 or 1 in a broadcast: nobody answers (they would collide)",
        )
    )
    out += _box_vectors()
    return out


def _box_vectors() -> list[dict[str, Any]]:
    """RELAY_SET of relay/IO box 1 (0xF101), key = the test key, floor 0x10000 (§5.1):
    only an accepted one changes the relays or feeds the box's watchdog."""
    out: list[dict[str, Any]] = []
    box = 0xF101
    spec = COMMANDS["RELAY_SET"][1]
    values = {"mask": 0x01, "state": 0x01, "ctr": 0x10001}
    good = frame(box, MANAGER, 0x42, 50, pack_payload(spec, values), signed=True)
    out.append(_refusal("RELAY_SET authenticated (accepted)", good, "accepted", 0,
                        "MAC right, counter above the floor: relay 1 energised, watchdog fed, "
                        "reply", module=box))  # fmt: skip
    out.append(_refusal("RELAY_SET replayed (counter not above the floor)", good, "replayed",
                        6, "NAK 6, refusal counted, relays unchanged, watchdog not fed",
                        replay=True, module=box))  # fmt: skip
    forged = frame(box, MANAGER, 0x42, 51, pack_payload(spec, dict(values, ctr=0x10002)),
                   signed=True, key=bytes(16))  # fmt: skip
    out.append(_refusal("RELAY_SET under another key (a rogue device)", forged, "bad_mac", 6,
                        "MAC wrong: NAK 6, refusal counted, relays unchanged, watchdog not "
                        "fed", module=box))  # fmt: skip
    v1 = frame(box, MANAGER, 0x42, 52, b"\x01\x01")
    out.append(_refusal("RELAY_SET without the trailer (version 1 layout)", v1, "bad_length",
                        2, "every command has one exact length: NAK 2, nothing changes",
                        module=box))  # fmt: skip
    return out


def _refusal(name: str, raw: bytes, outcome: str, nak: int, receiver: str,
             replay: bool = False, module: int = 17) -> dict[str, Any]:  # fmt: skip
    return {"name": name, "hex": raw.hex(), "valid": True, "module": module,
            "key": TEST_KEY_HEX, "floor": 0x10001 if replay else 0x10000,
            "outcome": outcome, "nak": nak, "receiver": receiver}  # fmt: skip


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
    head = json.dumps(
        {
            "crc": header,
            "name": "CRC-16/IBM-3740",
            "protocol_version": VERSION,
            "test_key": TEST_KEY_HEX,
            "mac": "HMAC-SHA256 truncated to 6 bytes",
        }
    )
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
