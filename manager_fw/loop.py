# The one manager loop (docs/manager.md, "The shell contract"): it moves the bus bytes
# of a ManagerCore, steps it, reads the inputs and sets the outputs, through a HAL.
# The Pico W and unix_manager boards (manager_fw/main.py), the Linux manager
# (boards/linux_manager/shell.py) and the simulator (boards/sim/manager_shell.py) all
# run this code; they differ only in their HAL.
#
#   loop = ManagerLoop(core, hal)
#   while hal.running():                  # ManagerLoop.run() is this loop
#       wait_us = loop.poll()             # one turn; then the loop may sleep wait_us
#       hal.wait_us(wait_us)              # (optional) sleep, woken early by bus bytes
#
# A cooperative task calls poll() the same way (on the Pico W an asyncio task: the bus
# task first, the web server beside it):
#       while True:
#           wait_us = loop.poll()
#           await asyncio.sleep_ms(wait_us // 1000)
#
# The HAL:
#   hal.ticks_us(), hal.ticks_diff_us(a, b)   a µs counter (wraps like ticks_us)
#   hal.ticks_ms()             (optional) a ms counter wrapping at TICKS_MAX; without it
#                              the loop counts ms from ticks_us
#   hal.now_s()                StringCare seconds on the wall clock: stamps only
#   hal.steady_s()             (optional) StringCare seconds on a clock that never steps;
#                              without it the loop counts them from ticks_us, starting
#                              at now_s() (every timer of the core counts on this)
#   hal.bus_tx(buf, n)         send buf[:n] now (drive DE, wait for the last stop bit)
#   hal.bus_rx(buf) -> n       bytes received since the last call (never blocks)
#   hal.wait_us(us)            (optional) sleep at most us, less when bus bytes arrive
#   hal.ups_on_battery() -> bool, hal.mute_pressed() -> bool    (optional) the board's
#                              UPS input and mute button
#   hal.set_outputs(buzzer, led, relay_energised)               the alarm outputs
#   hal.status(core, wall_s)   after each step of the core: the status export, the web
#                              link, the persistence of what the core handed over
#   hal.feed_watchdog()        after each step of the core: a stuck loop resets a board
#   hal.running() -> bool      False ends run()
#   hal.window_slack_us        (optional) extra time to wait for replies (0 on a UART)
#   hal.persist_ops            (optional) device operations per store and turn that
#                              core.persist() may do (default 1: one flash erase or
#                              one record); the loop calls it every turn, outside the
#                              core's step
#
# The line is idle after 2 character times without a byte (the deframer settles cut
# frames); the core steps every step_us (and at once when a measurement cycle ended).

from shared import protocol as p
from shared.compat import TICKS_MAX, ticks_add

STEP_US = 50000  # the core's step period
PERSIST_OPS = 1  # device operations per store and turn (core.persist)


class ManagerLoop:
    def __init__(self, core, hal, step_us: int = STEP_US) -> None:
        self.core = core
        self.hal = hal
        self.step_us = step_us
        # device operations per store and turn for core.persist (manager_fw/persist.py):
        # 1 on a board (a flash erase is tens of ms), more where writes are quick
        self.persist_ops = getattr(hal, "persist_ops", PERSIST_OPS)
        self.master = core.master
        self.master.window_slack_us = getattr(hal, "window_slack_us", 0)
        self.rx = bytearray(256)
        self.idle_us = p.wire_us(2, core.cfg.baud)
        self.char_us = p.wire_us(1, core.cfg.baud)
        now = hal.ticks_us()
        self.last_rx_us = now
        self.idle_told = True
        self.last_step_us = now
        self.steps = 0
        self._muted = False
        self._ups = getattr(hal, "ups_on_battery", None)
        self._mute = getattr(hal, "mute_pressed", None)
        self._has_ms = hasattr(hal, "ticks_ms")
        self._has_steady = hasattr(hal, "steady_s")
        self._ms = 0  # counted from ticks_us when the HAL has no ticks_ms
        self._ms_rest_us = 0
        self._steady_s = hal.now_s()  # counted from ticks_us when the HAL has no steady_s
        self._steady_rest_us = 0
        self.wait_us = 0  # what the last poll() returned

    def poll(self) -> int:
        """One turn: hand the master what was received (or tell it the line went idle),
        send what it wants to send, step the core when due.  Returns how many µs
        the caller may wait before the next turn (bus bytes arriving end it early)."""
        hal = self.hal
        master = self.master
        now = hal.ticks_us()
        # what arrived first: a reply read after its window's deadline (the caller
        # slept) still counts, it came in time
        k = hal.bus_rx(self.rx)
        if k:
            master.receive(self.rx, now & TICKS_MAX, 0, k)
            self.last_rx_us = now
            self.idle_told = False
        elif not self.idle_told and hal.ticks_diff_us(now, self.last_rx_us) >= self.idle_us:
            master.line_idle(now & TICKS_MAX)
            self.idle_told = True
        n = master.step(now & TICKS_MAX)
        if n:
            hal.bus_tx(master.tx, n)
            now = hal.ticks_us()
            self.last_rx_us = now
        # storage outside the step: at most persist_ops block erases or records per
        # store and turn, never while a reply is awaited (the step only queues them)
        queued = self.core.persist(self.persist_ops)
        since = hal.ticks_diff_us(now, self.last_step_us)
        if since >= self.step_us or self.core.wants_step() or not self.steps:
            self._step(now, since)
            since = 0
        self.wait_us = self._wait(now, since, n or k, queued)
        return self.wait_us

    def _wait(self, now: int, since_step_us: int, busy: int, queued: int) -> int:
        """µs until the next turn is needed: the core's next need, the next step, the
        idle check of the line, records left to store; at least one character time
        when nothing moved."""
        wait = self.core.next_wake_us(now & TICKS_MAX)
        if queued and wait > self.char_us:
            wait = self.char_us
        due = self.step_us - since_step_us
        if due < wait:
            wait = due
        if not self.idle_told:
            idle = self.idle_us - self.hal.ticks_diff_us(now, self.last_rx_us)
            if idle < wait:
                wait = idle
        if wait <= 0 and not busy:
            wait = self.char_us  # work the master did not start yet: look again soon
        return wait if wait > 0 else 0

    def _step(self, now: int, since_us: int) -> None:
        hal = self.hal
        core = self.core
        self.last_step_us = now
        steady_s = self._clock(since_us)
        wall_s = hal.now_s()
        core.set_wall_offset(wall_s - steady_s)
        if self._ups is not None:
            core.set_ups_input(self._ups())
        if self._mute is not None:
            pressed = self._mute()
            if pressed and not self._muted:
                core.press_mute(steady_s)
            self._muted = pressed
        now_ms = hal.ticks_ms() if self._has_ms else self._ms
        core.step(now_ms, steady_s)
        self.steps += 1
        o = core.outputs
        hal.set_outputs(o.buzzer, o.led, o.relay_energised)
        hal.status(core, wall_s)
        hal.feed_watchdog()  # only here: a stuck loop lets the board's watchdog reset it

    def _clock(self, since_us: int) -> int:
        """The steady seconds (and the ms counter) after since_us more µs."""
        if not self._has_ms:
            rest = self._ms_rest_us + since_us
            self._ms = ticks_add(self._ms, rest // 1000)
            self._ms_rest_us = rest % 1000
        if self._has_steady:
            return self.hal.steady_s()
        rest = self._steady_rest_us + since_us
        while rest >= 1000000:
            rest -= 1000000
            self._steady_s += 1
        self._steady_rest_us = rest
        return self._steady_s

    def run(self) -> None:
        """poll() until hal.running() says stop, waiting as the core allows.  Leaving,
        however (the end, Ctrl-C, an error): the alarm contact signals (fail-safe)."""
        hal = self.hal
        wait = getattr(hal, "wait_us", None)
        try:
            while hal.running():
                us = self.poll()
                if wait is not None and us:
                    wait(us)
        finally:
            hal.set_outputs(False, 0, False)
