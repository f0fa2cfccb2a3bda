# Virtual converter: the MicroPython unix port behind a pty (tools/stringcare/vboard.py)
# running shared/bridge.py.  "USB" is the console (stdin/stdout, switched to a raw
# terminal so Ctrl-C is data), the bus is a TCP connection to the virtual bus hub.
import json
import os
import select
import socket
import sys
import time

try:
    import termios
except ImportError:  # only the unix port has it
    termios = None


class UnixConverterIo:
    def __init__(self, board: dict, settings: dict) -> None:
        self.baud = settings.get("baud", board["baud"])
        path = os.getenv("VBOARD_CONFIG") or ""
        env = {}
        if path:
            with open(path) as f:
                env = json.load(f)
        host, port = env["bus"].split(":")
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.connect(socket.getaddrinfo(host, int(port))[0][-1])
        s.setblocking(False)
        self.sock = s
        self.stdin = sys.stdin.buffer  # type: ignore[attr-defined]
        self.stdout = sys.stdout.buffer  # type: ignore[attr-defined]
        self.poll = select.poll()
        self.poll.register(sys.stdin, select.POLLIN)
        self.wait = select.poll()
        self.wait.register(sys.stdin, select.POLLIN)
        self.wait.register(s, select.POLLIN)
        self.one = bytearray(1)
        self.saved = None
        self.ticks_us = time.ticks_us
        self.ticks_diff_us = time.ticks_diff
        self.led_on = False

    def repl_requested(self) -> bool:
        return False

    def data_mode(self, on: bool) -> None:
        if termios is None:
            return
        if on:
            self.saved = termios.tcgetattr(0)
            termios.setraw(0)
        elif self.saved is not None:
            termios.tcsetattr(0, termios.TCSANOW, self.saved)

    def usb_read(self, buf) -> int:
        n = 0
        while n < len(buf) and self.poll.poll(0):
            if not self.stdin.readinto(self.one):
                break
            buf[n] = self.one[0]
            n += 1
        return n

    def usb_write(self, buf, n: int) -> None:
        self.stdout.write(bytes(buf[:n]))

    def bus_read(self, buf) -> int:
        try:
            return self.sock.readinto(buf) or 0
        except OSError:
            return 0

    def bus_tx(self, buf, n: int) -> None:
        data = bytes(buf[:n])
        while data:
            try:
                data = data[self.sock.send(data) :]
            except OSError:
                time.sleep_ms(1)

    def led(self, on: bool) -> None:
        self.led_on = on

    def idle(self) -> None:
        self.wait.poll(1)


def make_io(board: dict, settings: dict) -> UnixConverterIo:
    return UnixConverterIo(board, settings)
