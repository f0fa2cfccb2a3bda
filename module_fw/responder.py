# The module's side of the bus protocol (docs/protocol.md), sans-I/O.
#
#   reply_len = responder.handle(frame, now_ms)
#
# handle() applies the frame to the ModuleState and, when the protocol asks for a
# reply, encodes it into responder.tx and returns its length (0: stay silent).
# responder.tx_delay_us says when to start sending, counted from the end of the
# request's last stop bit (0: as soon as possible, within the reply deadline).
# Nothing here allocates for POLL_GROUP and READ_MEAS; an authenticated SET_TARGET
# allocates a few small objects for its MAC check (shared/auth.py), once per cycle.
#
# Checks run in one order, the first failing one decides (docs/protocol.md §6):
#   not for this module -> silent; unknown command -> NAK 1; payload length not exactly
#   the command's -> NAK 2; authentication (MAC, counter) -> NAK 6; field values -> NAK 3;
#   busy -> NAK 4; not allowed in this state -> NAK 5.  Broadcasts are never answered
#   with a NAK, and every refusal is counted (rx_errors, auth_refused).

from module_fw import state as st
from shared import auth, version
from shared import protocol as p
from shared.compat import ticks_diff

# Exact payload lengths the module accepts, by command (docs/protocol.md §5).
_REQ_LEN = {
    p.CMD_DISCOVER: 1,
    p.CMD_READ_MEAS: 0,
    p.CMD_POLL_GROUP: 3,
    p.CMD_SET_TARGET: p.SET_TARGET_FIELDS + p.AUTH_LEN,
    p.CMD_RI_START: 1 + p.AUTH_LEN,
    p.CMD_RI_READ: 0,
    p.CMD_STATUS: 0,
    p.CMD_ADDR_MODE: 1,
    p.CMD_ADDR_OFFER: 2,
    p.CMD_ADDR_CONFIRM: 10 + p.KEY_LEN,
    p.CMD_SET_ADDRESS: 2 + p.AUTH_LEN,
    p.CMD_GET_ADDRESS: 0,
    p.CMD_IDENTIFY: 1,
    p.CMD_RESET_ADDRESS: p.AUTH_LEN,
    p.CMD_MARK: 1,
    p.CMD_INFO: 0,
    p.CMD_CAL_READ: 1,
    p.CMD_CAL_WRITE: 9 + p.AUTH_LEN,
    p.CMD_SET_VARIANT: 1 + p.AUTH_LEN,
    p.CMD_SET_KEY: p.KEY_LEN + p.AUTH_LEN,
    p.CMD_SLEEP: 0,
    p.CMD_WAKE: 0,
}

# Requests that carry the authentication trailer (shared/auth.py).
AUTHENTICATED = (p.CMD_SET_TARGET, p.CMD_RI_START, p.CMD_SET_ADDRESS, p.CMD_RESET_ADDRESS,
                 p.CMD_CAL_WRITE, p.CMD_SET_VARIANT, p.CMD_SET_KEY)  # fmt: skip

VARIANT_COUNT = 5  # variant ids 0..4 (shared/variants.py)
TARGET_TIMEOUT_DEFAULT_S = 10
TARGET_TIMEOUT_MAX_S = 120
KEY_WRAP_LABEL = b"StringCare SET_KEY"
KEY_CHECK_LABEL = b"StringCare key check"


def uid_slot(uid: bytes, slots: int) -> int:
    """DISCOVER reply slot for this uid: 32-bit FNV-1a of the 8 uid bytes, folded to
    16 bits (h ^ h >> 16), modulo slots.  (Rare path: the big intermediate products are
    fine here.)"""
    h = 0x811C9DC5
    for b in uid:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return ((h ^ (h >> 16)) & 0xFFFF) % slots


def key_check(key) -> int:
    """SET_KEY reply: the first 4 bytes (LE u32) of HMAC-SHA256(new key, label), which
    shows the manager the module holds the key it sent without revealing it."""
    d = auth.hmac_sha256(key, KEY_CHECK_LABEL)
    return d[0] | (d[1] << 8) | (d[2] << 16) | (d[3] << 24)


class Responder:
    def __init__(self, state: st.ModuleState) -> None:
        self.state = state
        self.tx = bytearray(p.FRAME_MAX)
        self.tx_delay_us = 0
        self.ignored = 0  # frames for other devices, or replies of other devices
        # over hashlib: a verify leaves ~510 bytes of garbage (two hash objects, two
        # digests).  shared/sha256.py's viper MAC allocates nothing, but its code is
        # copied into RAM when loaded from a file (7.3 KB): the module's 64 KB heap
        # on the emulated M0 then fails four of test_core.py's cases (2026-12-04)
        self.mac = auth.Mac(state.key)
        self._slot_start_us = [0] * p.GROUP_MAX
        self.set_baud(state.baud)

    def set_baud(self, baud: int) -> None:
        """Cache the POLL_GROUP slot starts (the group poll path does no division)."""
        self.state.baud = baud
        for k in range(p.GROUP_MAX):
            self._slot_start_us[k] = p.group_slot_start_us(k, baud)

    def set_key(self, key) -> None:
        """Adopt a site key (addressing, SET_KEY, or USB at deploy); persisted."""
        s = self.state
        s.key = bytes(key)
        self.mac.set_key(key)
        s.dirty |= st.DIRTY_KEY

    # -- helpers -------------------------------------------------------------------

    # Every reply goes to the manager (DST 0xFFFE), whatever the request's SRC.

    def _nak(self, frame, error: int) -> int:
        self.tx[8] = frame.cmd
        self.tx[9] = error
        self.tx_delay_us = 0
        return p.encode_frame(self.tx, p.ADDR_MANAGER, self.state.address, p.CMD_NAK,
                              frame.seq, 2)  # fmt: skip

    def _reply(self, frame, length: int, src: int = -1) -> int:
        self.tx_delay_us = 0
        if src < 0:
            src = self.state.address
        return p.encode_frame(self.tx, p.ADDR_MANAGER, src, frame.cmd | p.REPLY, frame.seq,
                              length)  # fmt: skip

    def _authentic(self, frame) -> bool:
        """Check the trailer; a good one raises the counter floor, a bad one counts."""
        s = self.state
        r = auth.check_request(self.mac, frame, s.ctr_hi, s.ctr_lo)
        if r == 1:
            end = frame.off + frame.length - p.MAC_LEN - p.CTR_LEN
            s.ctr_hi = auth.ctr_hi(frame.buf, end)  # two ints, not get_ctr's tuple
            s.ctr_lo = auth.ctr_lo(frame.buf, end)
            return True
        if s.auth_refused < 0xFFFF:
            s.auth_refused += 1
        s.attention = True  # the manager reads STATUS, sees the count and warns
        return False

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
        # What the module measured, 10 uV and 0.2 degC steps, saturated into the
        # layout's range (docs/protocol.md, READ_MEAS).
        uv = s.voltage_uv
        if uv < 0:
            uv = 0
        elif uv > p.MEAS_VOLTAGE_MAX_UV:
            uv = p.MEAS_VOLTAGE_MAX_UV
        t = s.temp_mc
        if t < p.MEAS_TEMP_MIN_MC:
            t = p.MEAS_TEMP_MIN_MC
        elif t > p.MEAS_TEMP_MAX_MC:
            t = p.MEAS_TEMP_MAX_MC
        flags = s.meas_flags
        if s.attention:
            flags |= p.FLAG_ATTENTION  # at once (the core refreshes the flags every frame)
        return p.encode_meas(
            self.tx, p.ADDR_MANAGER, s.address, cmd | p.REPLY, frame.seq,
            uv, t, s.balance_pct, flags,
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
        if frame.length != want:
            s.rx_errors += 1
            return 0 if broadcast else self._nak(frame, p.ERR_BAD_LENGTH)

        if cmd == p.CMD_POLL_GROUP:
            count = frame.u8(2)
            if count == 0 or count > p.GROUP_MAX or not broadcast:
                s.rx_errors += 1  # not a group this protocol defines: nobody answers
                return 0
            index = s.address - frame.u16(0)
            if s.address == p.ADDR_UNADDRESSED or index < 0 or index >= count:
                return 0
            s.polled_ms = now_ms
            s.ever_polled = True
            n = self.meas_reply(frame, cmd)
            self.tx_delay_us = self._slot_start_us[index]
            return n
        if cmd == p.CMD_SET_TARGET:
            a = s.address
            if a == p.ADDR_UNADDRESSED or not (frame.u16(p.ST_FIRST) <= a <= frame.u16(p.ST_LAST)):
                return 0  # another string's target: not even checked
            if not self._authentic(frame):
                return 0
            target = p.target_uv_of(frame)
            flags = frame.u8(p.ST_FLAGS)
            if target < s.target_min_uv or target > s.target_max_uv:
                # Outside the variant's plausible float range, whatever the frame says:
                # never bleed towards it (the frame still refreshes the discharge flag
                # and the timeout; STATUS shows OUT_OF_WINDOW).
                flags &= ~p.TARGET_EQUALISE
            s.target_uv = target
            s.target_flags = flags
            t = frame.u8(p.ST_TIMEOUT)
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
            # Only the module whose button was pressed in addressing mode (physical
            # presence) takes an address and the site key this way.
            if not (s.addressing and s.claim_armed and self._uid_matches(frame, 0)):
                return 0
            new = frame.u16(8)
            if new < p.ADDR_MODULE_MIN or new > p.ADDR_MODULE_MAX:
                return 0 if broadcast else self._nak(frame, p.ERR_BAD_VALUE)
            key = bytearray(p.KEY_LEN)
            for i in range(p.KEY_LEN):
                key[i] = frame.u8(10 + i)
            self.set_key(key)
            self._take_address(new)
            p.put_u16(tx, 8, new)
            self._put_uid(10)
            return self._reply(frame, 10)
        if cmd == p.CMD_GET_ADDRESS:
            p.put_u16(tx, 8, s.address)
            self._put_uid(10)
            return self._reply(frame, 10)
        if cmd == p.CMD_DISCOVER:
            slots = frame.u8(0)
            if broadcast and slots < 2:
                return 0  # every device answering at once would only collide
            self._put_info(8)
            self._put_uid(14)
            n = self._reply(frame, 14)
            if slots > 1:
                self.tx_delay_us = p.discover_slot_start_us(uid_slot(s.uid, slots), s.baud)
            return n
        if cmd in AUTHENTICATED:
            if not self._authentic(frame):
                return 0 if broadcast else self._nak(frame, p.ERR_NOT_AUTHENTIC)
            if cmd == p.CMD_RESET_ADDRESS:
                n = 0 if broadcast else self._reply(frame, 0)
                s.address = p.ADDR_UNADDRESSED
                s.dirty |= st.DIRTY_ADDRESS
                s.identify = False
                s.target_received = False
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
        if cmd == p.CMD_SET_KEY:
            # new key = wrapped XOR HMAC(old key, label | counter)[:16]: the key never
            # crosses the bus in clear, and only the holder of the old key can set it
            end = frame.off + frame.length - p.MAC_LEN
            pad = self.mac.digest(
                KEY_WRAP_LABEL + bytes(frame.buf[end - p.CTR_LEN : end]), 0,
                len(KEY_WRAP_LABEL) + p.CTR_LEN,
            )  # fmt: skip
            key = bytearray(p.KEY_LEN)
            for i in range(p.KEY_LEN):
                key[i] = frame.u8(i) ^ pad[i]
            self.set_key(key)
            p.put_u32(tx, 8, key_check(key))
            return self._reply(frame, 4)
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
            tx[24] = 1 if s.key is not None else 0
            p.put_u16(tx, 25, s.auth_refused)
            auth.put_ctr(tx, 27, s.ctr_hi, s.ctr_lo)
            return self._reply(frame, 25)
        if cmd == p.CMD_STATUS:
            flags = s.meas_flags | s.status_extra
            if s.identify_confirmed:
                flags |= st.STATUS_IDENTIFY_CONFIRMED
            if s.claim_armed:
                flags |= st.STATUS_CLAIM_PENDING
            p.put_u16(tx, 8, flags)
            tx[10] = s.mode()
            tx[11] = (s.status_extra >> 8) & st.INHIBIT_MASK
            p.put_i16(tx, 12, s.board_temp_cc)
            p.put_u32(tx, 14, s.uptime_s)
            p.put_u16(tx, 18, s.rx_frames & 0xFFFF)
            p.put_u16(tx, 20, s.rx_errors & 0xFFFF)
            p.put_u16(tx, 22, s.auth_refused)
            s.attention = False
            s.identify_confirmed = False
            return self._reply(frame, 16)
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
                if not cal_allowed(ch, offset, gain):
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


def cal_allowed(channel: int, offset: int, gain_ppm: int) -> bool:
    """Limits of a calibration channel, whatever the frame (docs/protocol.md §8): gains
    within +-5 %, the voltage offset within +-0.5 V, a temperature offset within
    +-10 degC, the tempco's reference temperature within -40..+85 degC."""
    if not -p.CAL_GAIN_PPM_LIMIT <= gain_ppm <= p.CAL_GAIN_PPM_LIMIT:
        return False  # beyond 5 % it is a fault, not a calibration
    if channel == 3 or channel == 4:
        return -p.CAL_TEMP_OFFSET_LIMIT_MC <= offset <= p.CAL_TEMP_OFFSET_LIMIT_MC
    if channel == st.CAL_TEMPCO:
        return p.CAL_TEMPCO_REF_MIN_MC <= offset <= p.CAL_TEMPCO_REF_MAX_MC
    return -p.CAL_OFFSET_LIMIT <= offset <= p.CAL_OFFSET_LIMIT
