"""The host's end of the module bus: a serial port (the converter, a USB-RS485 adapter,
or a virtual bus URL such as socket://127.0.0.1:PORT) speaking docs/protocol.md.

The smallest thing that works for deploy's start check and `stringcare calibrate`:
one request, one reply, with the protocol's own encoder and Deframer.  (The manager's
BusMaster transport supersedes it when the two are merged.)
"""

from __future__ import annotations

import time
from typing import Any

import serial

from shared import auth
from shared import protocol as p
from shared import protocol_layouts as lay


class BusError(Exception):
    """No answer, a NAK, or a port that cannot be opened; the message says which."""


class BusPort:
    def __init__(self, url: str, baud: int = 115200, site_key: bytes | None = None) -> None:
        """site_key: the site's key (manager_fw/sitekey.py), needed for the commands that
        change a module (CAL_WRITE, RI_START, ...: docs/protocol.md, "Authentication")."""
        self.url = url
        self.signer = auth.Signer(site_key) if site_key is not None else None
        self._floors: set[int] = set()  # modules whose counter floor we have read
        try:
            self.ser = serial.serial_for_url(url, baudrate=baud, timeout=0.01)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise BusError("cannot open the bus port %s: %s" % (url, exc)) from None
        self.deframer = p.Deframer()
        self.seq = 0

    def close(self) -> None:
        self.ser.close()

    def __enter__(self) -> BusPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, dst: int, cmd: int, payload: bytes = b"") -> int:
        # What arrived before this request (another tool's traffic on a shared bus, a
        # late reply to an earlier try) cannot be its answer: drop it, so that a reply
        # with a reused SEQ is never taken for this one.
        self.ser.reset_input_buffer()
        self.deframer = p.Deframer()
        self.seq = (self.seq + 1) & 0xFF
        # payload holds the command's fields; an authenticated command gets its counter
        # and MAC here (a fresh counter on every try)
        if lay.authenticated(cmd):
            if self.signer is None:
                raise BusError(
                    "command 0x%02x changes the module: it needs the site key (--site-key, "
                    "the manager's site_key.hex)" % cmd
                )
            n = len(payload)
            buf = bytearray(p.FRAME_MAX)
            buf[p.HEADER_LEN : p.HEADER_LEN + n] = payload
            p.encode_header(buf, dst, p.ADDR_MANAGER, cmd, self.seq, n + p.AUTH_LEN)
            self.signer.sign_request(buf, n)
            data = bytes(buf[: p.finish_frame(buf, n + p.AUTH_LEN)])
        else:
            data = p.encode_bytes(dst, p.ADDR_MANAGER, cmd, self.seq, payload)
        self.ser.write(data)
        self.ser.flush()
        return self.seq

    def _learn_floor(self, address: int) -> None:
        """Move our counter past the module's (INFO): it refuses anything older."""
        if self.signer is None or address in self._floors:
            return
        f = self.request(address, p.CMD_INFO)
        if f.length >= 25:
            hi, lo = auth.get_ctr(f.buf, f.off + 19)
            self.signer.advance_past(hi, lo, 1)
        self._floors.add(address)

    def replies(self, seq: int, timeout_s: float) -> list[p.Frame]:
        """Every reply with this SEQ that arrives within timeout_s."""
        out: list[p.Frame] = []
        deadline = time.monotonic() + timeout_s
        d = self.deframer
        while time.monotonic() < deadline:
            data = self.ser.read(256)
            if not data:
                d.idle()
                self._take_replies(seq, out)
            start = 0
            while start < len(data):
                start += d.feed(data, start, len(data))
                self._take_replies(seq, out)
        return out

    def _take_replies(self, seq: int, out: list[p.Frame]) -> None:
        """Every frame the deframer holds; those replying to SEQ (copied) into out."""
        d = self.deframer
        frame = d.poll()
        while frame is not None:
            if frame.is_reply() and frame.seq == seq:
                whole = frame.buf[frame.off - p.HEADER_LEN : frame.off + frame.length + p.CRC_LEN]
                out.append(p.decode_frame(bytes(whole)))
            frame = d.poll()

    def request(
        self, dst: int, cmd: int, payload: bytes = b"", timeout_s: float = 0.3, tries: int = 3
    ) -> p.Frame:
        """One unicast transaction; BusError when nothing answers or the module NAKs."""
        if lay.authenticated(cmd):
            self._learn_floor(dst)
        for _ in range(tries):
            seq = self.send(dst, cmd, payload)
            got = None
            deadline = time.monotonic() + timeout_s
            while got is None and time.monotonic() < deadline:
                got = self.replies_until_first(seq, deadline - time.monotonic())
                if got is not None and (
                    got.src != dst or got.cmd not in (cmd | p.REPLY, p.CMD_NAK)
                ):
                    got = None  # another device's or another command's reply: not ours
            if got is not None:
                if got.cmd == p.CMD_NAK:
                    raise BusError(
                        "module %d refused command 0x%02x: NAK error %d (%s)"
                        % (dst, cmd, got.u8(1), NAK_NAMES.get(got.u8(1), "?"))
                    )
                return got
        raise BusError(
            "no answer from address %d on %s (command 0x%02x, %d tries)"
            % (dst, self.url, cmd, tries)
        )

    def replies_until_first(self, seq: int, timeout_s: float) -> p.Frame | None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = self.replies(seq, 0.02)
            if got:
                return got[0]
        return None

    # -- commands -----------------------------------------------------------------------

    def discover(self, address: int, timeout_s: float = 0.3, tries: int = 3) -> dict[str, Any]:
        f = self.request(address, p.CMD_DISCOVER, b"\x00", timeout_s, tries)
        return {
            "address": f.src,
            "device_type": f.u8(0),
            "hw_rev": f.u8(1),
            "firmware": "%d.%d.%d" % (f.u8(2), f.u8(3), f.u8(4)),
            "variant": f.u8(5),
            "uid": f.payload()[6:14].hex(),
        }

    def read_meas(self, address: int) -> dict[str, int]:
        f = self.request(address, p.CMD_READ_MEAS)
        uv = p.meas_voltage_uv(f.buf, f.off)
        mc = p.meas_temp_mc(f.buf, f.off)
        return {
            "voltage_uv": uv,
            "voltage_mv": (uv + 500) // 1000,
            "temp_mc": mc,
            "temp_cc": mc // 10,
            "balance_pct": f.u8(4),
            "flags": f.u8(5),
        }

    def status(self, address: int) -> dict[str, int]:
        f = self.request(address, p.CMD_STATUS)
        return {"flags": f.u16(0), "mode": f.u8(2), "board_temp_cc": f.i16(4),
                "auth_refused": f.u16(14)}  # fmt: skip

    def cal_read(self, address: int, channel: int) -> tuple[int, int]:
        f = self.request(address, p.CMD_CAL_READ, bytes([channel]))
        return f.i32(1), f.i32(5)

    def cal_write(self, address: int, channel: int, offset: int, gain_ppm: int) -> tuple[int, int]:
        payload = bytes([channel]) + offset.to_bytes(4, "little", signed=True)
        payload += gain_ppm.to_bytes(4, "little", signed=True)
        f = self.request(address, p.CMD_CAL_WRITE, payload, timeout_s=0.5)
        return f.i32(1), f.i32(5)

    def ri_start(self, address: int, method: int = 0) -> tuple[int, int]:
        f = self.request(address, p.CMD_RI_START, bytes([method]))
        return f.u8(0), f.u16(1)

    def ri_read(self, address: int) -> dict[str, int]:
        f = self.request(address, p.CMD_RI_READ)
        return {"state": f.u8(0), "quality": f.u8(1), "ri_nohm": f.u32(2), "age_s": f.u16(6)}


NAK_NAMES = {1: "unknown command", 2: "bad length", 3: "bad value", 4: "busy", 5: "not allowed",
             6: "not authentic: wrong site key or a replayed counter"}  # fmt: skip
