# Virtual relay/IO box: the HAL of shared/busdevice.DeviceShell for the MicroPython unix
# port (tools/stringcare/vboard.py launches it behind a pty).  Runs the real firmware
# (firmware/iobox/main.py, shared/relaybox.py); only the hardware is made up:
#   * bus UART: a TCP connection to the virtual bus hub (config "bus": "host:port");
#   * DIP switches: config "box" (1..15, default 1); inputs: config "inputs" (bits 0..3,
#     1 = closed); uid: config "uid" (16 hex digits);
#   * relays: reported in the status file <config>.status.json as {"relays", "fed",
#     "expiries", "requests"}, rewritten at once when they change (what an installer
#     would see on the box's terminals).
# The config file (VBOARD_CONFIG) is re-read when it changes.  UnixDeviceHal is also
# the base of the virtual current sensor (boards/unix_current/hal.py).
import json
import os
import select
import socket
import time

from shared import relaybox as rb


class UnixDeviceHal:
    def __init__(self, board: dict, settings: dict) -> None:
        self.config_path = os.getenv("VBOARD_CONFIG") or ""
        self.env: dict = {}
        self._mtime: tuple = (-1, -1)
        self._reload()
        uid_hex = self.env.get("uid", "5354524e470000f1")
        self.uid = bytes(int(uid_hex[k : k + 2], 16) for k in range(0, 16, 2))
        self.hw_rev = board["hw_rev"]
        self.baud = settings.get("baud", board["baud"])
        self.sock = None
        bus = self.env.get("bus")
        if bus:
            host, port = bus.split(":")
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.connect(socket.getaddrinfo(host, int(port))[0][-1])
            s.setblocking(False)
            self.sock = s
            self.poller = select.poll()
            self.poller.register(s, select.POLLIN)
        self.ticks_us = time.ticks_us
        self.ticks_ms = time.ticks_ms
        self.ticks_diff_us = time.ticks_diff
        self._reload_ms = time.ticks_ms()
        self.status: dict = {}

    def _reload(self) -> None:
        if not self.config_path:
            return
        try:
            st = os.stat(self.config_path)
        except OSError:
            return
        stamp = (st[1], st[8])  # set_env replaces the file: a new inode, same second
        if stamp != self._mtime:
            self._mtime = stamp
            try:
                with open(self.config_path) as f:
                    self.env = json.load(f)
            except (OSError, ValueError):
                pass  # being rewritten: next time

    def reload_due(self, now_ms: int) -> bool:
        if time.ticks_diff(now_ms, self._reload_ms) < 100:
            return False
        self._reload_ms = now_ms
        self._reload()
        return True

    def write_status(self, status: dict) -> None:
        if status == self.status or not self.config_path:
            return
        self.status = status
        tmp = self.config_path + ".status.tmp"
        with open(tmp, "w") as f:
            json.dump(status, f)
        os.rename(tmp, self.config_path + ".status.json")

    def bus_rx(self, buf) -> int:
        if self.sock is None:
            return 0
        try:
            return self.sock.readinto(buf) or 0
        except OSError:
            return 0

    def bus_tx(self, buf, n: int) -> None:
        if self.sock is None:
            return
        data = bytes(buf[:n])
        while data:
            try:
                data = data[self.sock.send(data) :]
            except OSError:
                time.sleep_ms(1)
        time.sleep_us(n * 10000000 // self.baud)  # the bytes' time on the wire

    def feed_watchdog(self) -> None:
        pass  # the unix port has no watchdog; vboard power_cycle() plays a reset

    def wait_us(self, us: int) -> None:
        if self.sock is not None:
            self.poller.poll(1)  # back at once when bytes arrive
        else:
            time.sleep_us(us)

    def started(self, text: str) -> None:
        print(text)


class UnixIoboxHal(UnixDeviceHal):
    def __init__(self, board: dict, settings: dict) -> None:
        UnixDeviceHal.__init__(self, board, settings)
        self.watchdog_ms, self.failsafe_mask = rb.settings_of(board, settings)
        self.box = int(self.env.get("box", 1))
        self.inputs = int(self.env.get("inputs", 0)) & rb.RELAY_MASK

    def update(self, core, now_ms: int) -> None:
        if self.reload_due(now_ms):
            self.inputs = int(self.env.get("inputs", 0)) & rb.RELAY_MASK
        core.set_inputs(self.inputs, now_ms)
        self.write_status(
            {"relays": core.relays, "fed": core.fed, "expiries": core.expiries,
             "changes": core.changes}
        )  # fmt: skip

    def shutdown(self, operator: bool) -> None:
        self.write_status({"relays": 0, "fed": False, "expiries": -1, "changes": -1})


def make_hal(board: dict, settings: dict) -> UnixIoboxHal:
    return UnixIoboxHal(board, settings)
