# The manager's shell loop for MicroPython boards (and the virtual unix_manager board):
# drives ManagerCore with a board's hardware abstraction (boards/<board>/hal.py).
#
#   from manager_fw.main import run
#   run(hal)             # never returns on a board (Ctrl-C on the console: REPL)
#
# The HAL a manager board provides (boards/pico_w_manager/hal.py is the reference):
#   hal.ticks_us(), hal.ticks_diff_us(a, b)   the port's µs counter
#   hal.now_s()                   StringCare seconds (RTC, set by NTP when there is one):
#                                 stamps only; the core's timers count on ticks_us
#   hal.bus_rx(buf) -> n          bytes waiting on the bus UART (non-blocking)
#   hal.bus_tx(buf, n)            drive DE, send, wait for the last stop bit, release DE
#   hal.config_files              file access for manager_fw.config.ConfigStore
#   hal.history_device, hal.event_device   block devices (manager_fw/blockdev.py), or
#                                 None when they could not be opened, and then
#   hal.store_faults              (optional) why, per store (manager_fw/ring_file.open_file_store)
#   hal.mute_pressed() -> bool    the mute button (level)
#   hal.ups_on_battery() -> bool  the UPS's "on battery" input on the board
#   hal.set_outputs(buzzer, led, relay_energised)   alarm outputs (manager_fw/outputs.py)
#   hal.ri_store                  (optional) where the Ri baselines persist: default
#                                 manager_fw/ri_store.RiStore("ri_baselines.bin")
#   hal.feed_watchdog(), hal.started(text), hal.status(core, now_s) (optional export)
#   hal.repl_wanted()             optional: Ctrl-C left the loop for the REPL
#   hal.running() -> bool         False ends the loop (virtual boards, tests)
#   hal.window_slack_us           extra time to wait for replies (0 on an RS-485 UART;
#                                 a virtual bus over TCP delivers them late)
#
# The line is idle after 2 character times without a byte (the deframer settles cut
# frames); the core steps every 50 ms; the bus is served every iteration.

from manager_fw import sitekey
from manager_fw.config import ConfigStore
from manager_fw.core import ManagerCore
from shared import protocol as p
from shared.compat import TICKS_MAX

STEP_MS = 50
PERSIST_OPS = 1  # device operations per store and loop turn (core.persist)


def make_core(hal, store=None):
    if store is None:  # the web shell passes its own: its configuration page edits it
        store = ConfigStore("site.json", hal.config_files)
    cfg = store.load()  # the newest good file; a corrupt one is reported, not used
    key = sitekey.load_or_create(getattr(hal, "site_key_path", "site_key.hex"))
    core = ManagerCore(cfg, hal.history_device, hal.event_device, hal.now_s(), site_key=key)
    faults = getattr(hal, "store_faults", None)  # what opening the store files found
    if faults:
        for which in range(len(faults)):
            core.report_store(hal.now_s(), which, faults[which])
    core.config_loaded(hal.now_s(), store)
    # the Ri baselines live beside site.json, apart from it: they survive restarts,
    # configuration edits and firmware updates (docs/judgement.md)
    ri_store = getattr(hal, "ri_store", None)
    if ri_store is None:
        from manager_fw.ri_store import RiStore

        ri_store = RiStore("ri_baselines.bin")
    core.judge.attach_ri_store(ri_store, hal.now_s())
    return core


def run(hal, core=None):
    for _ in steps(hal, core):
        pass


def steps(hal, core=None):
    """The loop as a generator, one turn of the bus per next(): it yields how many ms
    the caller may give other cooperative work (the Pico W's web task,
    manager_fw/web/board.py) before the next turn; run() takes no pause."""
    if core is None:
        core = make_core(hal)
    master = core.master
    master.window_slack_us = getattr(hal, "window_slack_us", 0)
    rx = bytearray(256)
    idle_us = p.wire_us(2, core.cfg.baud)
    last_rx = hal.ticks_us()
    idle_told = True
    last_step = last_rx
    muted = False
    # the steady clock the core's timers count on: the RTC at the start, then ticks;
    # an RTC step (NTP, a date fixed by hand) only moves timestamps (set_wall_offset)
    steady_s = hal.now_s()
    steady_us = 0
    hal.started("stringcare: manager started, %d modules" % core.layout.module_count)
    try:
        while hal.running():
            now = hal.ticks_us()
            tick = now & TICKS_MAX
            n = master.step(tick)
            if n:
                hal.bus_tx(master.tx, n)
                now = hal.ticks_us()
                last_rx = now
            k = hal.bus_rx(rx)
            if k:
                master.receive(rx, now & TICKS_MAX, 0, k)
                last_rx = now
                idle_told = False
            elif not idle_told and hal.ticks_diff_us(now, last_rx) >= idle_us:
                master.line_idle(now & TICKS_MAX)
                idle_told = True
            # storage outside the step: one block erase or one record per store and turn,
            # never while a reply is awaited (the step only queues them)
            core.persist(PERSIST_OPS)
            dt_us = hal.ticks_diff_us(now, last_step)
            if dt_us >= STEP_MS * 1000:
                last_step = now
                steady_us += dt_us
                while steady_us >= 1000000:
                    steady_us -= 1000000
                    steady_s += 1
                wall_s = hal.now_s()
                core.set_wall_offset(wall_s - steady_s)
                now_s = steady_s
                core.set_ups_input(hal.ups_on_battery())
                pressed = hal.mute_pressed()
                if pressed and not muted:
                    core.press_mute(now_s)
                muted = pressed
                core.step((now // 1000) & TICKS_MAX, now_s)
                o = core.outputs
                hal.set_outputs(o.buzzer, o.led, o.relay_energised)
                hal.status(core, wall_s)
                hal.feed_watchdog()  # only here: a stuck loop lets the board's watchdog reset it
            yield 0
    except KeyboardInterrupt:
        if hasattr(hal, "repl_wanted"):
            hal.repl_wanted()  # Ctrl-C: the operator wants the REPL (boards keep it alive)
        raise
    finally:
        # leaving, however (end of run, Ctrl-C, an error): the contact signals (fail-safe)
        hal.set_outputs(False, 0, False)
