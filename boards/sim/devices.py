# Simulated bus devices that are not battery modules: the string current sensor and the
# relay/IO box (docs/protocol.md §5, 0x40-0x42).  Same interface as the module's
# Responder (handle(frame, now_ms) -> reply length, tx, tx_delay_us), so a
# boards.sim.bus.ResponderNode puts them on the VirtualBus.  Tests and the simulator set
# their values (current_ma, inputs) and read what the manager did (relays, relay_log).

from shared import protocol as p
from shared import version


class _Device:
    device_type = 0

    def __init__(self, address: int, uid: bytes, hw_rev: int = 1) -> None:
        self.address = address
        self.uid = bytes(uid)
        self.hw_rev = hw_rev
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_delay_us = 0
        self.requests = 0

    def _reply(self, frame, cmd: int, length: int) -> int:
        self.tx_delay_us = 0
        return p.encode_frame(self.tx, frame.src, self.address, cmd, frame.seq, length)

    def _nak(self, frame, error: int) -> int:
        self.tx[8] = frame.cmd
        self.tx[9] = error
        return self._reply(frame, p.CMD_NAK, 2)

    def handle(self, frame, now_ms: int) -> int:
        if frame.cmd & p.REPLY or frame.dst != self.address:
            return 0
        self.requests += 1
        tx = self.tx
        if frame.cmd == p.CMD_DISCOVER or frame.cmd == p.CMD_INFO:
            tx[8] = self.device_type
            tx[9] = self.hw_rev
            tx[10] = version.VERSION_MAJOR
            tx[11] = version.VERSION_MINOR
            tx[12] = version.VERSION_PATCH
            tx[13] = 0
            if frame.cmd == p.CMD_DISCOVER:
                for i in range(8):
                    tx[14 + i] = self.uid[i]
                return self._reply(frame, frame.cmd | p.REPLY, 14)
            tx[14] = 0
            tx[15] = 0
            for i in range(8):
                tx[16 + i] = self.uid[i]
            return self._reply(frame, frame.cmd | p.REPLY, 16)
        return self.handle_own(frame, now_ms)

    def handle_own(self, frame, now_ms: int) -> int:
        return self._nak(frame, p.ERR_UNKNOWN_COMMAND)


class CurrentSensor(_Device):
    """A string current sensor; its string number 1..8 is its DIP-switch setting."""

    device_type = p.DEVICE_CURRENT_SENSOR

    def __init__(self, string_no: int, current_ma: int = 0, hw_rev: int = 1) -> None:
        uid = bytes([0x5C, 0xC5, 0, 0, 0, 0, 0, string_no])
        super().__init__(p.ADDR_CURRENT_SENSOR_BASE + string_no, uid, hw_rev)
        self.string_no = string_no
        self.current_ma = current_ma  # positive charging, negative discharging
        self.flags = 0  # bit 0 sensor fault, bit 1 over range
        self.reads = 0

    def handle_own(self, frame, now_ms: int) -> int:
        if frame.cmd != p.CMD_CURRENT_READ:
            return self._nak(frame, p.ERR_UNKNOWN_COMMAND)
        if frame.length != 0:
            return self._nak(frame, p.ERR_BAD_LENGTH)
        self.reads += 1
        p.put_i32(self.tx, 8, self.current_ma)
        self.tx[12] = self.string_no
        self.tx[13] = self.flags
        return self._reply(frame, p.CMD_CURRENT_READ | p.REPLY, 6)


class RelayBox(_Device):
    """A relay/IO box: 4 relays (1 = energised) and 4 digital inputs (1 = closed)."""

    device_type = p.DEVICE_RELAY_BOX

    def __init__(self, box: int, hw_rev: int = 1) -> None:
        uid = bytes([0x5C, 0xB0, 0, 0, 0, 0, 0, box])
        super().__init__(p.ADDR_RELAY_BOX_BASE + box, uid, hw_rev)
        self.box = box
        self.relays = 0
        self.inputs = 0
        self.relay_log: list = []  # (now_ms, relays) after every change

    def handle_own(self, frame, now_ms: int) -> int:
        cmd = frame.cmd
        if cmd == p.CMD_RELAY_SET:
            if frame.length != 2:
                return self._nak(frame, p.ERR_BAD_LENGTH)
            mask = frame.u8(0)
            if mask & 0xF0:
                return self._nak(frame, p.ERR_BAD_VALUE)
            new = (self.relays & ~mask) | (frame.u8(1) & mask)
            if new != self.relays:
                self.relays = new
                self.relay_log.append((now_ms, new))
        elif cmd != p.CMD_IO_READ:
            return self._nak(frame, p.ERR_UNKNOWN_COMMAND)
        elif frame.length != 0:
            return self._nak(frame, p.ERR_BAD_LENGTH)
        self.tx[8] = self.relays
        self.tx[9] = self.inputs
        return self._reply(frame, cmd | p.REPLY, 2)
