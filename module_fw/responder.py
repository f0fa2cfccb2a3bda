# The module's side of the bus protocol (docs/protocol.md), sans-I/O.
#
#   reply_len = responder.handle(frame, now_ms)
#
# handle() applies the frame to the ModuleState and, when the protocol asks for a
# reply, encodes it into responder.tx and returns its length (0: stay silent).
# responder.tx_delay_us says when to start sending, counted from the end of the
# request's last stop bit (0: as soon as possible, within the reply deadline).
# Nothing here allocates for the frames of normal operation (POLL_GROUP,
# SET_TARGET, READ_MEAS), so the module loop never triggers a garbage collection.

from module_fw import state as st
from shared import protocol as p
from shared import version
from shared.compat import ticks_diff

# Payload lengths the module accepts, by command.
_REQ_LEN = {
    p.CMD_DISCOVER: 1,
    p.CMD_READ_MEAS: 0,
    p.CMD_POLL_GROUP: 3,
    p.CMD_SET_TARGET: 9,
    p.CMD_RI_START: 1,
    p.CMD_RI_READ: 0,
    p.CMD_STATUS: 0,
    p.CMD_ADDR_MODE: 1,
    p.CMD_ADDR_OFFER: 2,
    p.CMD_ADDR_CONFIRM: 10,
    p.CMD_SET_ADDRESS: 2,
    p.CMD_GET_ADDRESS: 0,
    p.CMD_IDENTIFY: 1,
    p.CMD_RESET_ADDRESS: 2,
    p.CMD_MARK: 1,
    p.CMD_INFO: 0,
    p.CMD_CAL_READ: 1,
    p.CMD_CAL_WRITE: 9,
    p.CMD_SET_VARIANT: 1,
    p.CMD_SLEEP: 0,
    p.CMD_WAKE: 0,
}

VARIANT_COUNT = 5  # variant ids 0..4 (shared/variants.py)
TARGET_TIMEOUT_DEFAULT_S = 10
TARGET_TIMEOUT_MAX_S = 120


def uid_slot(uid: bytes, slots: int) -> int:
    """DISCOVER reply slot for this uid: 32-bit FNV-1a of the 8 uid bytes, folded to
    16 bits (h ^ h >> 16), modulo slots.  (Rare path: the big intermediate products are
    fine here.)"""
    h = 0x811C9DC5
    for b in uid:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFF) % slots


class Responder:
    def __init__(self, state: st.ModuleState) -> None:
        self.state = state
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_delay_us = 0
        self.ignored = 0  # frames for other devices, or replies of other devices
        self.set_baud(state.baud)

    def set_baud(self, baud: int) -> None:
        """Cache the POLL_GROUP slot timing (the group poll path does no division)."""
        self.state.baud = baud
        self._lead_us = p.group_lead_us(baud)
        self._slot_us = p.group_slot_us(baud)

    # -- helpers -------------------------------------------------------------------

    def _nak(self, frame, error: int) -> int:
        self.tx[8] = frame.cmd
        self.tx[9] = error
        self.tx_delay_us = 0
        return p.encode_frame(self.tx, frame.src, self.state.address, p.CMD_NAK, frame.seq, 2)

    def _reply(self, frame, length: int, src: int = -1) -> int:
        self.tx_delay_us = 0
        if src < 0:
            src = self.state.address
        return p.encode_frame(self.tx, frame.src, src, frame.cmd | p.REPLY, frame.seq, length)

    def _put_uid(self, off: int) -> None:
        uid = self.state.uid
        tx = self.tx
        for i in range(8):
            tx[off + i] = uid[i]

    def _uid_matches(self, frame, off: int) -> bool:
        uid = self.state.uid
        for i in range(8):
            if frame.u8(off + i) != uid[i]:
                return False
        return True

    def meas_reply(self, frame, cmd: int) -> int:
        s = self.state
        # Whole mV on the wire, rounded with error feedback: what one reply rounds off
        # the next one carries, so successive replies average to the uV reading.  The
        # manager's string average (and so the target) then has no rounding bias, which
        # a string of 64 blocks would otherwise pile onto its one low block (docs/
        # balancing.md, "Resolution").
        mv = s.voltage_mv
        uv = s.voltage_uv
        if uv > 0:
            e = uv + s.report_residual_uv
            mv = (e + 500) // 1000
            s.report_residual_uv = e - mv * 1000
        else:
            s.report_residual_uv = 0
        return p.encode_meas(
            self.tx, frame.src, s.address, cmd | p.REPLY, frame.seq,
            mv, s.temp_cc, s.balance_pct, s.meas_flags,
        )  # fmt: skip

    # -- entry ---------------------------------------------------------------------

    def handle(self, frame, now_ms: int) -> int:
        s = self.state
        if frame.cmd & p.REPLY:
            self.ignored += 1
            return 0
        broadcast = frame.dst == p.ADDR_BROADCAST
        if not broadcast and frame.dst != s.address:
            self.ignored += 1
            return 0
        s.rx_frames += 1
        s.last_rx_ms = now_ms
        if s.sleeping:
            s.sleeping = False  # any traffic for us wakes the module
        cmd = frame.cmd
        want = _REQ_LEN.get(cmd, -1)
        if want < 0:
            s.rx_errors += 1
            return 0 if broadcast else self._nak(frame, p.ERR_UNKNOWN_COMMAND)
        if frame.length != want and not (cmd == p.CMD_SET_TARGET and frame.length == 8):
            # (SET_TARGET without its last byte: a manager before the 10 uV target)
            s.rx_errors += 1
            return 0 if broadcast else self._nak(frame, p.ERR_BAD_LENGTH)

        if cmd == p.CMD_POLL_GROUP:
            first = frame.u16(0)
            index = s.address - first
            if s.address == p.ADDR_UNADDRESSED or index < 0 or index >= frame.u8(2):
                return 0
            s.polled_ms = now_ms
            s.ever_polled = True
            n = self.meas_reply(frame, cmd)
            self.tx_delay_us = self._lead_us + index * self._slot_us
            return n
        if cmd == p.CMD_SET_TARGET:
            a = s.address
            if a != p.ADDR_UNADDRESSED and frame.u16(0) <= a <= frame.u16(2):
                frac = frame.u8(8) if frame.length > 8 else 0
                if frac > 99:
                    s.rx_errors += 1  # not a sub-mV part: keep the last good target
                    return 0
                s.target_mv = frame.u16(4)
                s.target_10uv = frac
                s.target_flags = frame.u8(6)
                t = frame.u8(7)
                if t == 0:
                    t = TARGET_TIMEOUT_DEFAULT_S
                elif t > TARGET_TIMEOUT_MAX_S:
                    t = TARGET_TIMEOUT_MAX_S
                s.target_timeout_ms = t * 1000
                s.target_rx_ms = now_ms
                s.target_received = True
                s.polled_ms = now_ms
            return 0
        if cmd == p.CMD_READ_MEAS:
            if broadcast:
                return 0
            s.polled_ms = now_ms
            s.ever_polled = True
            return self.meas_reply(frame, cmd)
        return self._handle_rare(frame, now_ms, broadcast)

    def _handle_rare(self, frame, now_ms: int, broadcast: bool) -> int:
        s = self.state
        cmd = frame.cmd
        tx = self.tx
        if cmd == p.CMD_WAKE:
            return 0
        if cmd == p.CMD_SLEEP:
            if broadcast:
                s.sleeping = True
            return 0
        if cmd == p.CMD_ADDR_MODE:
            if frame.u8(0):
                if s.address == p.ADDR_UNADDRESSED:
                    s.addressing = True
                    s.reset_hold = False
            else:
                s.addressing = False
                s.claim_armed = False
            return 0
        if cmd == p.CMD_ADDR_OFFER:
            offered = frame.u16(0)
            if not (s.addressing and s.claim_armed and broadcast):
                return 0
            if offered < p.ADDR_MODULE_MIN or offered > p.ADDR_MODULE_MAX:
                return 0
            p.put_u16(tx, 8, offered)
            self._put_uid(10)
            return self._reply(frame, 10, src=p.ADDR_UNADDRESSED)
        if cmd == p.CMD_ADDR_CONFIRM:
            if not self._uid_matches(frame, 0):
                return 0
            new = frame.u16(8)
            if new < p.ADDR_MODULE_MIN or new > p.ADDR_MODULE_MAX:
                return 0 if broadcast else self._nak(frame, p.ERR_BAD_VALUE)
            self._take_address(new)
            p.put_u16(tx, 8, new)
            self._put_uid(10)
            return self._reply(frame, 10)
        if cmd == p.CMD_GET_ADDRESS:
            p.put_u16(tx, 8, s.address)
            self._put_uid(10)
            return self._reply(frame, 10)
        if cmd == p.CMD_RESET_ADDRESS:
            if frame.u16(0) != p.RESET_MAGIC:
                return 0 if broadcast else self._nak(frame, p.ERR_BAD_VALUE)
            n = 0 if broadcast else self._reply(frame, 0)
            s.address = p.ADDR_UNADDRESSED
            s.dirty |= st.DIRTY_ADDRESS
            s.identify = False
            s.target_received = False
            return n
        if cmd == p.CMD_DISCOVER:
            slots = frame.u8(0)
            self._put_info(8)
            self._put_uid(14)
            n = self._reply(frame, 14)
            if slots > 1:
                self.tx_delay_us = p.group_lead_us(s.baud) + uid_slot(s.uid, slots) * p.wire_us(
                    p.OVERHEAD + 14 + p.GUARD_CHARS, s.baud
                )
            return n
        if broadcast:
            return 0  # the remaining commands are unicast only
        if cmd == p.CMD_SET_ADDRESS:
            new = frame.u16(0)
            if new < p.ADDR_MODULE_MIN or new > p.ADDR_MODULE_MAX:
                return self._nak(frame, p.ERR_BAD_VALUE)
            self._take_address(new)
            p.put_u16(tx, 8, new)
            return self._reply(frame, 2)
        if cmd == p.CMD_IDENTIFY:
            s.identify = bool(frame.u8(0))
            if s.identify:
                s.identify_confirmed = False
            tx[8] = 1 if s.identify else 0
            return self._reply(frame, 1)
        if cmd == p.CMD_MARK:
            mark = frame.u8(0)
            if mark > p.MARK_ALARM:
                return self._nak(frame, p.ERR_BAD_VALUE)
            s.mark = mark
            s.mark_ms = now_ms
            tx[8] = mark
            return self._reply(frame, 1)
        if cmd == p.CMD_INFO:
            self._put_info(8)
            tx[14] = s.ri_method
            tx[15] = s.store_flags
            self._put_uid(16)
            return self._reply(frame, 16)
        if cmd == p.CMD_STATUS:
            flags = s.meas_flags | s.status_extra
            if s.identify_confirmed:
                flags |= st.STATUS_IDENTIFY_CONFIRMED
            if s.claim_armed:
                flags |= st.STATUS_CLAIM_PENDING
            p.put_u16(tx, 8, flags)
            tx[10] = s.mode()
            tx[11] = (s.status_extra >> 8) & 0xFF
            p.put_i16(tx, 12, s.board_temp_cc)
            p.put_u32(tx, 14, s.uptime_s)
            p.put_u16(tx, 18, s.rx_frames)
            p.put_u16(tx, 20, s.rx_errors)
            s.attention = False
            s.identify_confirmed = False
            return self._reply(frame, 14)
        if cmd == p.CMD_RI_START:
            method = frame.u8(0)
            if method > 2:
                return self._nak(frame, p.ERR_BAD_VALUE)
            if s.ri_busy or s.ri_request >= 0:
                return self._nak(frame, p.ERR_BUSY)
            if s.address == p.ADDR_UNADDRESSED or s.reset_hold:
                return self._nak(frame, p.ERR_NOT_ALLOWED)
            if method == p.RI_METHOD_DEFAULT:
                method = s.ri_method
            s.ri_request = method
            tx[8] = method
            p.put_u16(tx, 9, s.ri_duration_ms[method])
            return self._reply(frame, 3)
        if cmd == p.CMD_RI_READ:
            state = s.ri_state
            if s.ri_busy or s.ri_request >= 0:
                state = p.RI_BUSY
            tx[8] = state
            tx[9] = s.ri_quality
            p.put_u32(tx, 10, s.ri_nohm if state == p.RI_OK else 0)
            age = 0
            if state != p.RI_NONE and state != p.RI_BUSY:
                age = ticks_diff(now_ms, s.ri_done_ms) // 1000
                if age < 0:
                    age = 0
                elif age > 0xFFFF:
                    age = 0xFFFF
            p.put_u16(tx, 14, age)
            s.meas_flags &= ~p.FLAG_RI_RESULT
            return self._reply(frame, 8)
        if cmd == p.CMD_CAL_READ or cmd == p.CMD_CAL_WRITE:
            ch = frame.u8(0)
            if ch >= st.CAL_CHANNELS:
                return self._nak(frame, p.ERR_BAD_VALUE)
            if cmd == p.CMD_CAL_WRITE:
                gain = frame.i32(5)
                offset = frame.i32(1)
                if not -p.CAL_GAIN_PPM_LIMIT <= gain <= p.CAL_GAIN_PPM_LIMIT:
                    return self._nak(frame, p.ERR_BAD_VALUE)  # beyond 5 % it is a fault
                if not -p.CAL_OFFSET_LIMIT <= offset <= p.CAL_OFFSET_LIMIT:
                    return self._nak(frame, p.ERR_BAD_VALUE)
                s.cal_offset[ch] = offset
                s.cal_gain_ppm[ch] = gain
                s.dirty |= st.DIRTY_CALIBRATION
            tx[8] = ch
            p.put_i32(tx, 9, s.cal_offset[ch])
            p.put_i32(tx, 13, s.cal_gain_ppm[ch])
            return self._reply(frame, 9)
        if cmd == p.CMD_SET_VARIANT:
            v = frame.u8(0)
            if v >= VARIANT_COUNT:
                return self._nak(frame, p.ERR_BAD_VALUE)
            s.variant_id = v
            s.dirty |= st.DIRTY_VARIANT
            tx[8] = v
            return self._reply(frame, 1)
        return self._nak(frame, p.ERR_UNKNOWN_COMMAND)

    def _put_info(self, off: int) -> None:
        s = self.state
        tx = self.tx
        tx[off] = p.DEVICE_MODULE
        tx[off + 1] = s.hw_rev
        tx[off + 2] = version.VERSION_MAJOR
        tx[off + 3] = version.VERSION_MINOR
        tx[off + 4] = version.VERSION_PATCH
        tx[off + 5] = s.variant_id

    def _take_address(self, new: int) -> None:
        s = self.state
        s.address = new
        s.addressing = False
        s.claim_armed = False
        s.reset_hold = False
        s.dirty |= st.DIRTY_ADDRESS
