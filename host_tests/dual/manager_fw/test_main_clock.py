# The MicroPython manager loop (manager_fw/main.py, Pico W and unix_manager) counts the
# core's timers on ticks, not on the RTC: an RTC step of an hour either way (NTP, a date
# fixed by hand) moves the events' stamps, never the silent-module alarm.  A HAL in
# virtual time: ticks advance 5 ms per call, no module ever answers, so the one module
# falls silent 10 s (alarm_delay_s) after polling starts and the contact drops.
import json

from manager_fw import events as ev
from manager_fw import main

START_S = 200000000


class Files:
    def __init__(self, text):
        self.files = {"site.json": text}

    def read(self, path):
        return self.files.get(path)

    def write(self, path, text):
        self.files[path] = text

    def rename(self, old, new):
        self.files[new] = self.files.pop(old)

    def remove(self, path):
        self.files.pop(path, None)


class EventList:
    def __init__(self):
        self.items = []

    def append(self, time_s, code, module=0xFFFF, string=0xFF, value=0, arg=0, extra=0):
        self.items.append((time_s, code, module))


class VirtualHal:
    def __init__(self, step_s, step_at_us, end_us):
        site = {"site": "clock", "strings": [{"modules": 1}]}
        site["silent"] = {"alarm_delay_s": 10, "contact_delay_s": 0}
        self.config_files = Files(json.dumps(site))
        self.history_device = None
        self.event_device = None
        self.window_slack_us = 0
        self.us = 0
        self.step_s = step_s
        self.step_at_us = step_at_us
        self.end_us = end_us
        self.contact_dropped_us = -1
        self.energised_seen = False

    def ticks_us(self):
        self.us += 5000
        return self.us

    def ticks_diff_us(self, a, b):
        return a - b

    def now_s(self):
        rtc = START_S + self.us // 1000000
        return rtc + self.step_s if self.us >= self.step_at_us else rtc

    def bus_rx(self, buf):
        return 0

    def bus_tx(self, buf, n):
        pass

    def mute_pressed(self):
        return False

    def ups_on_battery(self):
        return False

    def set_outputs(self, buzzer, led, relay_energised):
        if relay_energised:
            self.energised_seen = True
        elif self.energised_seen and self.contact_dropped_us < 0:
            self.contact_dropped_us = self.us

    def feed_watchdog(self):
        pass

    def started(self, text):
        pass

    def status(self, core, now_s):
        pass

    def running(self):
        return self.us < self.end_us


def run_with_step(step_s):
    hal = VirtualHal(step_s, 2000000, 40000000)  # the RTC steps 2 s in; 40 s in all
    core = main.make_core(hal)
    log = EventList()
    core.events = log
    main.run(hal, core)
    return hal, core, log


def alarm_after_running_s(hal, core):
    # the silence counts from the start of polling; polling starts after the census
    return hal.contact_dropped_us // 1000000 - (core.silence.started_s - START_S)


def test_an_rtc_step_back_moves_no_alarm_and_stamps_events_with_the_new_time():
    hal, core, log = run_with_step(-3600)
    assert hal.energised_seen and hal.contact_dropped_us > 0
    assert 10 <= alarm_after_running_s(hal, core) <= 11
    silent = [e for e in log.items if e[1] == ev.EV_MODULE_SILENT]
    assert len(silent) == 1
    assert silent[0][0] - START_S < 0  # stamped an hour back, as the RTC now says


def test_an_rtc_step_ahead_fires_no_timer_early():
    hal, core, log = run_with_step(3600)
    assert hal.energised_seen and hal.contact_dropped_us > 0
    assert 10 <= alarm_after_running_s(hal, core) <= 11
    silent = [e for e in log.items if e[1] == ev.EV_MODULE_SILENT]
    assert len(silent) == 1 and silent[0][0] - START_S > 3600


def test_the_ri_baselines_survive_a_restart_of_the_board_manager():
    # make_core gives the judge the board's store (default: ri_baselines.bin beside
    # site.json), so a baseline learned before a restart is there after it
    from manager_fw.ri_store import MemoryRiStore

    store = MemoryRiStore()
    hal = VirtualHal(0, 0, 0)
    hal.ri_store = store
    core = main.make_core(hal)
    ri = core.judge.ri
    for _ in range(ri.baseline_count):
        ri.add(0, 4000000)
    core.judge._persist()
    assert store.writes == 1
    again = VirtualHal(0, 0, 0)
    again.ri_store = store
    assert main.make_core(again).judge.ri.baseline_nohm[0] == 4000000
