# Virtual manager board: the HAL of manager_fw/main.py for the MicroPython unix port.
# The real manager firmware in MicroPython, on a made-up board:
#   * bus UART: a TCP connection to the virtual bus hub (STRINGCARE_BUS=host:port);
#   * history and events: two files (manager_fw.blockdev.FileBlockDevice);
#   * site.json in the working directory (manager_fw.config.ConfigStore);
#   * alarm outputs, mute and UPS input: none; every second the core's status is written
#     to STRINGCARE_STATUS_FILE (JSON) when set; STRINGCARE_RUN_S ends the loop, and so
#     does the file STRINGCARE_STOP_FILE once it exists (a test stops the manager when
#     what it waits for has happened, not after a fixed time).
import json
import os
import time

from boards.unix_module.hal import TcpBus
from manager_fw.config_store import OsFiles
from manager_fw.ring import RING_EVENTS, RING_HISTORY
from manager_fw.ring_file import open_file_store

EPOCH_2020 = 1577836800


class UnixManagerHal:
    def __init__(self, board: dict, settings: dict) -> None:
        self.baud = settings.get("baud", board["baud"])
        self.window_slack_us = 20000  # TCP and two interpreters between manager and modules
        bus = os.getenv("STRINGCARE_BUS")
        self.bus = TcpBus(bus, self.baud) if bus else None
        # a store file that cannot be made, or held another geometry, never stops the
        # manager: store_faults goes to core.report_store (manager_fw/main.py)
        self.history_device, hf = open_file_store("history.bin", 2 * 1024 * 1024, RING_HISTORY,
                                                  65536)  # fmt: skip
        self.event_device, ef = open_file_store("events.bin", 256 * 1024, RING_EVENTS, 4096)
        self.store_faults = (hf, ef)
        self.config_files = OsFiles()
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff
        self.status_file = os.getenv("STRINGCARE_STATUS_FILE") or ""
        run_s = os.getenv("STRINGCARE_RUN_S")
        self.end_ms = time.ticks_add(time.ticks_ms(), int(run_s) * 1000) if run_s else None
        self.stop_file = os.getenv("STRINGCARE_STOP_FILE") or ""
        self._stop_checked_ms = time.ticks_ms()
        self._status_ms = time.ticks_ms()
        self.outputs = (False, 0, False)

    def now_s(self) -> int:
        return int(time.time()) - EPOCH_2020  # a float on the unix port

    def bus_rx(self, buf) -> int:
        return 0 if self.bus is None else self.bus.rx(buf)

    def bus_tx(self, buf, n: int) -> None:
        if self.bus is not None:
            self.bus.tx(buf, n)

    def wait_us(self, us: int) -> None:
        # the manager loop may sleep: block on the bus socket (bytes end it at once);
        # poll() counts in ms, so a shorter wait returns at once (the loop polls again)
        if us >= 1000:
            if self.bus is not None:
                self.bus.wait(us // 1000)
            else:
                time.sleep_ms(us // 1000)

    def mute_pressed(self) -> bool:
        return False

    def ups_on_battery(self) -> bool:
        return False

    def set_outputs(self, buzzer: bool, led: int, relay_energised: bool) -> None:
        self.outputs = (buzzer, led, relay_energised)

    def status(self, core, now_s: int) -> None:
        now = time.ticks_ms()
        if not self.status_file or time.ticks_diff(now, self._status_ms) < 1000:
            return
        self._status_ms = now
        mods = []
        for i in range(core.layout.module_count):
            mods.append([core.layout.label(i), core.module_answering(i),
                         core.voltage_uv[i], core.balance_pct[i]])  # fmt: skip
        st = core.strings
        strings = []
        for k in range(core.layout.string_count):
            strings.append([st.target_mv[k], bool(st.equalising[k])])
        with open(self.status_file + ".tmp", "w") as f:
            json.dump({"mode": core.mode_name(), "modules": mods, "strings": strings,
                       "currents": [core.string_current(k)
                                    for k in range(core.layout.string_count)],
                       "contact": self.outputs[2], "problems": core.problems,
                       "storage": [core.store_health_name(0), core.store_health_name(1)],
                       "implausible": [core.layout.label(i)
                                       for i in range(core.layout.module_count)
                                       if core.implausible[i]]}, f)  # fmt: skip
        os.rename(self.status_file + ".tmp", self.status_file)

    def feed_watchdog(self) -> None:
        pass

    def started(self, text: str) -> None:
        print(text)

    def running(self) -> bool:
        now = time.ticks_ms()
        if self.stop_file and time.ticks_diff(now, self._stop_checked_ms) >= 100:
            self._stop_checked_ms = now
            try:
                os.stat(self.stop_file)
                self.end_ms = now
            except OSError:
                pass
        return self.end_ms is None or time.ticks_diff(self.end_ms, now) > 0


def make_hal(board: dict, settings: dict) -> UnixManagerHal:
    return UnixManagerHal(board, settings)
