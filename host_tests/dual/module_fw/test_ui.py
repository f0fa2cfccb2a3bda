# module_fw/ui: button timings (debounced, 2 s, 12 s) and LED patterns of SPEC §1.
from module_fw import state as st
from module_fw import ui


def new_state(address=0):
    s = st.ModuleState(b"abcdefgh", 3)
    s.address = address
    return s


class Finger:
    """Presses the button and runs the UI logic every 10 ms, like the module loop."""

    def __init__(self, s, t=1000):
        self.s = s
        self.t = t
        self.button = ui.Button()
        self.actions = ui.ButtonActions()
        self.events = []

    def hold(self, level, ms, bounce=False):
        end = self.t + ms
        while self.t < end:
            raw = level
            if bounce and self.t < end - ms + 20:
                raw = (self.t // 3) & 1 == 1  # contact bounce in the first 20 ms
            ev = self.button.update(self.t, raw)
            if ev:
                self.events.append(ev)
                self.actions.apply(self.s, ev)
            self.t += 10

    def press(self, ms, bounce=False):
        self.hold(True, ms, bounce)
        self.hold(False, 100)


def test_debounce_ignores_short_glitches():
    f = Finger(new_state())
    f.hold(True, 20)  # 20 ms is a glitch, below 30 ms debounce
    f.hold(False, 100)
    assert f.events == []
    f.press(300, bounce=True)
    assert f.events == [ui.EV_PRESS, ui.EV_SHORT]


def test_addressing_short_press_arms_the_claim():
    s = new_state()
    s.addressing = True
    f = Finger(s)
    f.press(400)
    assert s.claim_armed and s.addressing


def test_addressing_press_over_2s_cancels():
    s = new_state()
    s.addressing = True
    f = Finger(s)
    f.hold(True, 1900)
    assert s.addressing  # not yet
    f.hold(True, 200)
    assert not s.addressing and not s.claim_armed and s.address == 0
    f.hold(False, 100)
    assert not s.claim_armed  # the release after a cancel is not a claim
    assert ui.led_pattern(s, f.t) == ui.LED_SLOW_RED


def test_normal_press_over_12s_resets_and_forces_addressing():
    s = new_state(address=17)
    s.ever_polled = True
    f = Finger(s)
    f.hold(True, 11900)
    assert s.address == 17
    f.hold(True, 200)
    assert s.address == 0 and s.addressing and s.reset_hold
    assert s.dirty & st.DIRTY_ADDRESS
    assert s.mode() == st.MODE_ADDRESSING
    assert ui.led_pattern(s, f.t) == ui.LED_FAST_RED


def test_short_press_in_normal_operation_changes_nothing():
    s = new_state(address=17)
    f = Finger(s)
    f.press(500)
    f.press(5000)
    assert s.address == 17 and not s.addressing


def test_identify_press_confirms():
    s = new_state(address=5)
    s.identify = True
    f = Finger(s)
    f.press(300)
    assert not s.identify and s.identify_confirmed and s.attention


def test_led_pattern_priorities():
    s = new_state()
    now = 50000
    assert ui.led_pattern(s, now) == ui.LED_SLOW_RED  # as delivered
    s.addressing = True
    assert ui.led_pattern(s, now) == ui.LED_FAST_RED
    s.addressing = False
    s.address = 3
    assert ui.led_pattern(s, now) == ui.LED_GREEN_BLINK  # addressed, never polled
    s.ever_polled = True
    s.polled_ms = now - 1000
    assert ui.led_pattern(s, now) == ui.LED_GREEN
    s.mark = 2
    assert ui.led_pattern(s, now) == ui.LED_RED
    assert ui.led_pattern(s, now + 20000) == ui.LED_GREEN_BLINK  # polling stopped
    s.identify = True
    assert ui.led_pattern(s, now) == ui.LED_RED_GREEN
    s.sleeping = True
    assert ui.led_pattern(s, now) == ui.LED_SLEEP


def count_on(pattern, bit, t0=0, ms=2000):
    return sum(1 for t in range(t0, t0 + ms, 10) if ui.led_outputs(pattern, t) & bit)


def test_led_blink_rates():
    # slow red 1 Hz: half of 2 s on; fast red 5 Hz: also half, but 10 on-edges
    assert count_on(ui.LED_SLOW_RED, 1) == 100
    edges = sum(
        1
        for t in range(10, 2000, 10)
        if ui.led_outputs(ui.LED_FAST_RED, t) and not ui.led_outputs(ui.LED_FAST_RED, t - 10)
    )
    assert edges == 9 or edges == 10
    assert count_on(ui.LED_GREEN, 2) == 200 and count_on(ui.LED_GREEN, 1) == 0
    assert count_on(ui.LED_RED, 1) == 200
    assert count_on(ui.LED_RED_GREEN, 1) == 100 and count_on(ui.LED_RED_GREEN, 2) == 100
    assert count_on(ui.LED_SLEEP, 2, ms=10000) == 10  # 50 ms every 5 s
    assert count_on(ui.LED_OFF, 3) == 0
