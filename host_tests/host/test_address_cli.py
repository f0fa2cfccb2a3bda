"""`stringcare address`: the addressing workflows of SPEC §3 end to end, against the
simulated bus (module responders on the virtual bus, a simulated installer pressing
buttons) and against a serial port (pyserial: loop:// and a pseudo-terminal with a
module on its far end)."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest
from host_support import REPO

from boards.sim.bus import ResponderNode
from manager_fw import events as ev
from manager_fw.blockdev import FileBlockDevice
from module_fw.responder import Responder
from shared import protocol as p
from stringcare import cli
from stringcare_host.transport import SimTransport

KEY = bytes(range(16))  # a site key (any 16 bytes)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def sim_addresses(out: str) -> list[int]:
    line = [x for x in out.splitlines() if x.startswith("simulated modules")][-1]
    return [int(x.split("=")[1]) for x in line.split(": ", 1)[1].split(", ")]


def test_auto_addressing_with_progress(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "address", "auto", "1", "6", "--sim", "6", "--press-every",
                         "2s", "--speed", "0", "--press-order", "reverse")  # fmt: skip
    assert code == 0, err
    assert "address 1: waiting for a button press ..." in out
    assert re.search(r"address 6 -> module 5ca1000000014201 +\(6 of 6, 1[12]\.\d s\)", out)
    assert out.rstrip().endswith("done: addressed 1..6")
    # the installer walked the string backwards: the last module got address 1
    assert sim_addresses(out) == [6, 5, 4, 3, 2, 1]
    assert "still in addressing mode" not in out


def test_addressing_in_parts(capsys: pytest.CaptureFixture[str]) -> None:
    # 1-2 were done earlier; now 3-4, in random cabling order
    code, out, err = run(capsys, "address", "auto", "3", "4", "--sim", "4", "--sim-addresses",
                         "1,0,2,0", "--speed", "0", "--press-order", "random")  # fmt: skip
    assert code == 0, err
    got = sim_addresses(out)
    assert sorted(got) == [1, 2, 3, 4] and got[0] == 1 and got[2] == 2


def test_an_address_in_use_stops_and_says_where_to_resume(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run(capsys, "address", "auto", "1", "4", "--sim", "4", "--sim-addresses",
                         "0,0,2,0", "--speed", "0")  # fmt: skip
    assert code == 1
    assert "address 2 is already used by module 5ca1000000034203" in err
    assert "keep it and resume with: stringcare address auto 3 4 --sim 4" in out
    assert "or free it with: stringcare address reset 2 --sim 4" in out
    assert "and resume with: stringcare address auto 2 4 --sim 4" in out
    assert "still in addressing mode" not in out


def test_ctrl_c_leaves_addressing_mode_and_says_where_to_resume(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SimTransport, "interrupt_at_us", 5_000_000)  # Ctrl-C after 5 s
    code, out, _err = run(capsys, "address", "auto", "1", "6", "--sim", "6", "--speed", "0")
    assert code == 130
    assert "interrupted: leaving addressing mode ..." in out
    assert "stopped by the operator after 2 of 6" in out
    assert "resume with: stringcare address auto 3 6 --sim 6" in out
    assert sim_addresses(out) == [1, 2, 0, 0, 0, 0]
    assert "still in addressing mode" not in out  # ADDR_MODE leave went out


def test_ctrl_c_from_the_keyboard() -> None:
    exe = Path(sys.executable).parent / "stringcare"
    proc = subprocess.Popen(
        [str(exe), "address", "auto", "1", "8", "--sim", "8", "--press-every", "1s",
         "--speed", "4"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "address 2 ->" in line:
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=60)
    text = "".join(lines) + out
    assert proc.returncode == 130, err
    assert "resume with: stringcare address auto 3 8 --sim 8" in text
    assert "still in addressing mode" not in text


def test_manual_workflows(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    log = str(tmp_path / "events.bin")
    code, out, _ = run(capsys, "address", "query", "--sim", "1", "--speed", "0")
    assert code == 0 and "not addressed (0), uid 5ca1000000014201" in out
    code, _, err = run(capsys, "address", "query", "--sim", "2", "--speed", "0")
    assert code == 1 and "more than one module answered" in err
    # a new module has no site key: only its button (or USB) gives it one
    code, _, err = run(capsys, "address", "set", "0", "12", "--sim", "1", "--speed", "0")
    assert code == 1 and "does not hold this site's key" in err and "address auto 12 12" in err
    code, out, _ = run(capsys, "address", "set", "0", "12", "--sim", "1", "--sim-addresses",
                       "0", "--speed", "0", "--event-log", log)  # fmt: skip
    assert code == 1  # still keyless
    code, out, _ = run(capsys, "address", "set", "7", "12", "--sim", "1", "--sim-addresses",
                       "7", "--speed", "0", "--event-log", log)  # fmt: skip
    assert code == 0 and "now has address 12" in out, out
    assert sim_addresses(out) == [12]
    code, _, err = run(capsys, "address", "set", "5", "6", "--sim", "2", "--sim-addresses",
                       "5,6", "--speed", "0")  # fmt: skip
    assert code == 1 and "address 6 is already taken" in err
    code, out, _ = run(capsys, "address", "identify", "3", "--sim", "3", "--sim-addresses",
                       "1,2,3", "--speed", "0", "--press-every", "3s")  # fmt: skip
    assert code == 0 and "module 3 confirmed by its button" in out
    code, out, _ = run(capsys, "address", "reset", "2", "--sim", "3", "--sim-addresses",
                       "1,2,3", "--speed", "0", "--event-log", log)  # fmt: skip
    assert code == 0 and sim_addresses(out) == [1, 0, 3]
    code, out, _ = run(capsys, "address", "reset", "--all", "--sim", "3", "--sim-addresses",
                       "1,2,3", "--speed", "0")  # fmt: skip
    assert code == 0 and sim_addresses(out) == [0, 0, 0]
    code, out, err = run(capsys, "address", "check", "2", "--sim", "3", "--sim-addresses",
                         "2,2,3", "--speed", "0")  # fmt: skip
    assert code == 1 and "address 2 is used by 2 modules" in err
    code, out, _ = run(capsys, "address", "check", "3", "--sim", "3", "--sim-addresses",
                       "2,2,3", "--speed", "0")  # fmt: skip
    assert code == 0 and "address 3: one module, uid 5ca1000000034203" in out
    steps = [(e.arg, e.module, e.value) for e in ev.EventReader(FileBlockDevice(log,
             readonly=True)).events()]  # fmt: skip
    assert steps == [(ev.ADDR_CHANGED, 12, 7), (ev.ADDR_RESET, 2, 0)]  # value: the old address


def test_bad_input_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [
        (("address", "query"), "say which bus: --port /dev/ttyUSB0"),
        (("address", "query", "--sim", "2", "--port", "loop://"), "say which bus"),
        (("address", "auto", "5", "3", "--sim", "2"), "start <= end"),
        (("address", "query", "--sim", "2", "--sim-addresses", "1,x"), "separated by commas"),
        (("address", "query", "--sim", "2", "--sim-addresses", "1"), "gives 1 addresses"),
        (("address", "query", "--sim", "1", "--press-every", "often"), "is not a duration"),
        (("address", "reset", "--sim", "1"), "give one ADDRESS to reset, or --all"),
        (("address", "query", "--port", "/dev/nonexistent-tty"), "cannot open"),
    ]
    for args, message in cases:
        code, _out, err = run(capsys, *args)
        assert code == 2 and message in err, (args, err)


def test_a_serial_port_with_nobody_on_it(capsys: pytest.CaptureFixture[str]) -> None:
    # loop:// echoes our own requests: the master must ignore them and time out
    code, out, err = run(capsys, "address", "query", "--port", "loop://")
    assert code == 1 and "no module answered" in err, out + err


class FarEnd:
    """Two modules behind a pseudo-terminal: what a USB RS-485 converter would show."""

    def __init__(self) -> None:
        self.fd, slave = pty.openpty()
        tty.setraw(slave)
        self.path = os.ttyname(slave)
        self.slave = slave
        self.modules = SimTransport.unaddressed(2)
        self.nodes = [ResponderNode(Responder(m)) for m in self.modules]
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        deframers = [p.Deframer() for _ in self.nodes]
        t0 = time.monotonic()
        pressed = 0
        while not self.stop:
            now_ms = int((time.monotonic() - t0) * 1000)
            if pressed < 2 and now_ms > 500 * (pressed + 1) and self.modules[pressed].addressing:
                self.modules[pressed].claim_armed = True  # the installer presses
                pressed += 1
            try:
                data = os.read(self.fd, 256)
            except OSError:
                return
            for node, d in zip(self.nodes, deframers, strict=True):
                d.feed(data)
                frame = d.poll()
                while frame is not None:
                    n = node.responder.handle(frame, now_ms)
                    if n:
                        os.write(self.fd, bytes(node.responder.tx[:n]))
                    frame = d.poll()

    def close(self) -> None:
        self.stop = True
        os.close(self.slave)


def test_auto_addressing_over_a_serial_port(capsys: pytest.CaptureFixture[str]) -> None:
    far = FarEnd()
    try:
        code, out, err = run(capsys, "address", "auto", "1", "2", "--port", far.path,
                             "--latency-ms", "200", "--timeout", "20",
                             "--site-key", KEY.hex())  # fmt: skip
    finally:
        far.close()
    assert code == 0, out + err
    assert [m.address for m in far.modules] == [1, 2]
    assert [m.key for m in far.modules] == [KEY, KEY]  # handed over with the button press
    assert not any(m.addressing for m in far.modules)
    assert "address 2 -> module 5ca1000000024202" in out
