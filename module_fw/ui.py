# The module's button and two-colour LED, exactly as SPEC §1 describes them.  Pure:
# the core feeds the raw button level and the time; nothing here touches a pin.

from module_fw import state as st
from shared.compat import const, ticks_diff

DEBOUNCE_MS = const(30)  # a level must be stable this long to count
CANCEL_MS = const(2000)  # addressing mode: a press longer than 2 s cancels
RESET_MS = const(12000)  # normal operation: a press longer than 12 s resets to address 0
POLLED_RECENTLY_MS = const(10000)  # "addressed and polled": bus traffic for us within this
MARK_EXPIRES_MS = const(60000)  # a manager's mark is dropped after a minute unpolled

# Button events
EV_NONE = const(0)
EV_PRESS = const(1)  # stable press began
EV_SHORT = const(2)  # released before CANCEL_MS
EV_RELEASE = const(3)  # released after CANCEL_MS
EV_HOLD_CANCEL = const(4)  # still held: CANCEL_MS reached
EV_HOLD_RESET = const(5)  # still held: RESET_MS reached

# LED patterns (what SPEC §1 calls them)
LED_OFF = const(0)
LED_SLOW_RED = const(1)  # not addressed
LED_FAST_RED = const(2)  # addressing mode, waiting for the button
LED_GREEN = const(3)  # addressed and polled
LED_GREEN_BLINK = const(4)  # addressed, not polled
LED_RED = const(5)  # a value outside thresholds (mark from the manager)
LED_RED_GREEN = const(6)  # identify
LED_SLEEP = const(7)  # sleeping: a short green flash every 5 s


class Button:
    """Debounced button with hold milestones; `update` returns one event per call."""

    def __init__(self) -> None:
        self.pressed = False
        self._raw = False
        self._raw_since = 0
        self._pressed_at = 0
        self._milestone = 0  # 0 none, 1 cancel reported, 2 reset reported

    def update(self, now_ms: int, level: bool) -> int:
        if level != self._raw:
            self._raw = level
            self._raw_since = now_ms
        stable = ticks_diff(now_ms, self._raw_since) >= DEBOUNCE_MS
        if stable and self._raw != self.pressed:
            self.pressed = self._raw
            if self.pressed:
                # the press began when the level first went down, not after debouncing
                self._pressed_at = self._raw_since
                self._milestone = 0
                return EV_PRESS
            held = ticks_diff(self._raw_since, self._pressed_at)
            return EV_SHORT if held < CANCEL_MS else EV_RELEASE
        if self.pressed:
            held = ticks_diff(now_ms, self._pressed_at)
            if self._milestone == 0 and held >= CANCEL_MS:
                self._milestone = 1
                return EV_HOLD_CANCEL
            if self._milestone == 1 and held >= RESET_MS:
                self._milestone = 2
                return EV_HOLD_RESET
        return EV_NONE


class ButtonActions:
    """What a button event does to the module (SPEC §1), given the mode the press
    started in."""

    def __init__(self) -> None:
        self._press_mode = st.MODE_NORMAL

    def apply(self, s: st.ModuleState, event: int) -> None:
        if event == EV_PRESS:
            self._press_mode = s.mode()
            return
        mode = self._press_mode
        if mode == st.MODE_ADDRESSING:
            if event == EV_SHORT and s.addressing:
                s.claim_armed = True  # the next ADDR_OFFER is ours
                s.attention = True
            elif event == EV_HOLD_CANCEL:
                s.addressing = False  # cancel: back to address 0, slow red blink
                s.claim_armed = False
            return
        if mode == st.MODE_SLEEP:
            if event == EV_SHORT:
                s.sleeping = False
            return
        if mode == st.MODE_IDENTIFY and (event == EV_SHORT or event == EV_RELEASE):
            s.identify = False
            s.identify_confirmed = True  # reported in STATUS, once
            s.attention = True
            return
        if event == EV_HOLD_RESET:
            # normal operation, > 12 s: forget the address, stop measuring and
            # balancing, and wait in addressing mode
            s.address = 0
            s.dirty |= st.DIRTY_ADDRESS
            s.identify = False
            s.mark = 0
            s.target_received = False
            s.reset_hold = True
            s.addressing = True
            s.claim_armed = False


def led_pattern(s: st.ModuleState, now_ms: int) -> int:
    """Which SPEC §1 pattern the LED shows now (highest priority first)."""
    if s.sleeping:
        return LED_SLEEP
    if s.identify:
        return LED_RED_GREEN
    if s.addressing:
        return LED_FAST_RED
    if s.address == 0:
        return LED_SLOW_RED
    polled = s.ever_polled and ticks_diff(now_ms, s.polled_ms) < POLLED_RECENTLY_MS
    if not polled:
        return LED_GREEN_BLINK
    if s.mark:
        return LED_RED
    return LED_GREEN


def led_outputs(pattern: int, now_ms: int) -> int:
    """(red, green) for a pattern at a time, as bit 0 = red, bit 1 = green."""
    if pattern == LED_SLOW_RED:
        return 1 if (now_ms // 500) & 1 == 0 else 0  # 1 Hz
    if pattern == LED_FAST_RED:
        return 1 if (now_ms // 100) & 1 == 0 else 0  # 5 Hz
    if pattern == LED_GREEN:
        return 2
    if pattern == LED_GREEN_BLINK:
        return 2 if (now_ms // 500) & 1 == 0 else 0
    if pattern == LED_RED:
        return 1
    if pattern == LED_RED_GREEN:
        return 1 if (now_ms // 250) & 1 == 0 else 2
    if pattern == LED_SLEEP:
        return 2 if now_ms % 5000 < 50 else 0
    return 0
