"""The faults of the campaign: each one done to the real Linux manager (a `stringcare
manager` process) polling virtual module boards, with the relay box's relay 1 as the
alarm contact (rig.py); each checks its guarantee and says held or broken, with what it
saw.  docs/reliability.md lists them with their guarantee and their test.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stringcare.faults.rig import MODULE_UV, HubDevice, ManagerProc, Rig, site_config
from stringcare.faults.rig import wait_for as wait

START_S = 60.0  # the manager polls and has energised the contact (a loaded machine)
RELEASE_S = 5.0  # a released contact drops within (confirmed by the box in ms)
WATCHDOG_WAIT_S = 30.0  # after SIGKILL, how long we watch for the box to drop it
SILENT = {"alarm_delay_s": 10, "contact_delay_s": 0}  # the shortest silent alarm


@dataclass
class Outcome:
    held: bool
    detail: str
    figures: dict[str, float] = field(default_factory=dict)


@dataclass
class Fault:
    name: str
    guarantee: str
    run: Callable[[Rig], Outcome]
    fast: bool = False  # in the fast subset (`make test`)


FAULTS: list[Fault] = []


def fault(name: str, guarantee: str, fast: bool = False):
    def add(fn: Callable[[Rig], Outcome]) -> Callable[[Rig], Outcome]:
        FAULTS.append(Fault(name, guarantee, fn, fast))
        return fn

    return add


# --------------------------------------------------------------------------- helpers


class Running:
    """A manager that has started polling (contact energised), or why it did not."""

    def __init__(self, rig: Rig, name: str, args: list[str] | None = None,
                 config: dict[str, Any] | None = None, serve: bool = False,
                 data: Path | None = None, config_path: Path | None = None) -> None:  # fmt: skip
        self.rig = rig
        args = list(args or [])
        if serve:
            args += ["--serve", "127.0.0.1:0"]
        path = config_path or rig.write_config(name, config)
        self.m: ManagerProc = rig.manager(name, config=path, args=args, data=data)
        self.up_s = wait(lambda: rig.contact_energised() or not self.m.alive(), START_S)
        self.ok = self.up_s is not None and self.m.alive()
        self.url = ""
        if serve and self.ok:
            found = wait(lambda: "status page http" in self.m.output(), 10)
            hit = re.search(r"status page (http://[\d.]+:\d+/)", self.m.output())
            if found is not None and hit:
                self.url = hit.group(1)

    def why_not(self) -> Outcome:
        state = "exited %s" % self.m.proc.poll() if not self.m.alive() else "still starting"
        return Outcome(False, "the manager never energised the contact (%s): %s"
                       % (state, tail(self.m.output())))  # fmt: skip

    def status(self, timeout_s: float = 5.0) -> dict[str, Any] | None:
        if not self.url:
            return None
        try:
            with urllib.request.urlopen(self.url + "api/status", timeout=timeout_s) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def states(self) -> list[str]:
        snap = self.status()
        if not snap or not snap.get("strings"):
            return []
        return [m["state"] for s in snap["strings"] for m in s["modules"]]

    def stop(self) -> int:
        return self.m.stop()


def tail(text: str, lines: int = 6) -> str:
    return " | ".join(ln.strip() for ln in text.strip().splitlines()[-lines:])


def stamp(line: str) -> int:
    """The local time an event line starts with, as seconds since the epoch."""
    return int(time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")))


def event_lines(output: str) -> list[str]:
    """The event log lines the manager printed ('  2026-.. ..  text')."""
    return [ln.strip() for ln in output.splitlines() if re.match(r"\s+\d{4}-\d\d-\d\d ", ln)]


def monitoring_goes_on(r: Running, seconds: float, what: str) -> Outcome | None:
    """None when for `seconds` the manager kept running, kept polling and kept the
    contact energised (no alarm from the fault itself); else the broken outcome."""
    rig = r.rig
    polls0 = rig.polls()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not r.m.alive():
            return Outcome(False, "%s: the manager exited (%s): %s"
                           % (what, r.m.proc.poll(), tail(r.m.output())))  # fmt: skip
        if not rig.contact_energised():
            return Outcome(False, "%s: the alarm contact dropped" % what)
        time.sleep(0.2)
    polls = rig.polls() - polls0
    if polls < seconds:  # at least one poll a second (a 2-module bus does ~10-50)
        return Outcome(False, "%s: polling stalled (%d polls in %.0f s)" % (what, polls, seconds))
    return None


# --------------------------------------------------------------------------- leaving


def _signal_fault(sig: int, code: int) -> Callable[[Rig], Outcome]:
    def run(rig: Rig) -> Outcome:
        r = Running(rig, "sig%d" % sig)
        if not r.ok:
            return r.why_not()
        t0 = time.monotonic()
        r.m.signal(sig)
        dropped = wait(lambda: not rig.contact_energised(), RELEASE_S)
        exit_code = r.m.wait(20)
        out = r.m.output()
        r.stop()
        figures = {"drop_s": round(time.monotonic() - t0 if dropped is None else dropped, 3)}
        if dropped is None:
            return Outcome(False, "contact still energised %.0f s after the signal" % RELEASE_S,
                           figures)  # fmt: skip
        if exit_code != code or "alarm contact released" not in out:
            return Outcome(False, "exit %s (want %d): %s" % (exit_code, code, tail(out)), figures)
        return Outcome(True, "contact dropped %.2f s after the signal (released, confirmed by "
                       "the box), exit %d" % (dropped, code), figures)  # fmt: skip

    return run


fault("manager-sigterm", "SIGTERM: the manager releases the alarm contact and exits 143")(
    _signal_fault(signal.SIGTERM, 143))  # fmt: skip
fault("manager-sigint", "SIGINT (Ctrl-C): the manager releases the alarm contact, exits 130")(
    _signal_fault(signal.SIGINT, 130))  # fmt: skip
fault("manager-sighup", "SIGHUP (terminal gone): the manager releases the alarm contact, exits "
      "129")(_signal_fault(signal.SIGHUP, 129))  # fmt: skip


@fault("manager-sigkill", "SIGKILL: the relay box's communication watchdog releases the alarm "
       "contact within 15 s (10 s watchdog)")  # fmt: skip
def manager_sigkill(rig: Rig) -> Outcome:
    r = Running(rig, "kill")
    if not r.ok:
        return r.why_not()
    t0 = time.monotonic()
    r.m.signal(signal.SIGKILL)
    dropped = wait(lambda: not rig.contact_energised(), WATCHDOG_WAIT_S)
    r.stop()
    drop_s = time.monotonic() - t0 if dropped is None else dropped
    figures = {"alarm_contact_drop_s": round(drop_s, 2)}
    if dropped is None:
        why = "the box kept the contact energised %.0f s after SIGKILL" % WATCHDOG_WAIT_S
        return Outcome(False, why + " (no communication watchdog on the relay box?)", figures)
    return Outcome(dropped <= 15, "the box dropped the contact %.1f s after SIGKILL" % dropped,
                   figures)  # fmt: skip


@fault("manager-crash", "an exception in the manager loop: the contact is released on the way "
       "out, the traceback shown, exit 1")  # fmt: skip
def manager_crash(rig: Rig) -> Outcome:
    trigger = rig.workdir / "crash.now"
    trigger.unlink(missing_ok=True)
    r = Running(rig, "crash", ["--fault-crash-file", str(trigger)])
    if not r.ok:
        return r.why_not()
    trigger.write_text("crash")  # running: the next turn of the loop raises
    dropped = wait(lambda: not rig.contact_energised(), 30)
    code = r.m.wait(20)
    out = r.m.output()
    r.stop()
    if dropped is None:
        return Outcome(False, "contact still energised after the crash: " + tail(out))
    if code != 1 or "alarm contact released" not in out or "injected crash" not in out:
        return Outcome(False, "exit %s: %s" % (code, tail(out)))
    return Outcome(True, "crashed as injected; contact released, exit 1")


# --------------------------------------------------------------------------- time


def _clock_fault(step_s: int) -> Callable[[Rig], Outcome]:
    def run(rig: Rig) -> Outcome:
        name = "clock%+d" % step_s
        offset = rig.workdir / (name + ".offset")
        offset.write_text("0")
        cfg = site_config(rig.module_count + 1, silent=SILENT)  # one never answers
        r = Running(rig, name, ["--fault-wall-offset-file", str(offset)], cfg)
        if not r.ok:
            return r.why_not()
        t_up = time.monotonic()
        offset.write_text(str(step_s))
        alarm = wait(lambda: not rig.contact_energised(), 60)
        waited = time.monotonic() - t_up
        r.m.signal(signal.SIGTERM)
        r.m.wait(20)
        out = r.m.output()
        r.stop()
        figures = {"silent_alarm_s": round(waited, 1)}
        if alarm is None:
            return Outcome(False, "no silent-module alarm within 60 s of a %+d s step" % step_s,
                           figures)  # fmt: skip
        if not 1 <= waited <= 25:
            return Outcome(False, "silent alarm %.1f s after polling began (10 s delay)" % waited,
                           figures)  # fmt: skip
        silent = [ln for ln in event_lines(out) if "silent" in ln]
        census = [ln for ln in event_lines(out) if ln.endswith("census")]
        if not silent or not census:
            return Outcome(False, "no 'census' or 'module silent' event shown: " + tail(out),
                           figures)  # fmt: skip
        # by the manager's own stamps: census (before the step) to the alarm (after it)
        delay = stamp(silent[0]) - step_s - stamp(census[0])
        figures["silent_delay_by_events_s"] = delay
        if not 9 <= delay <= 14:
            why = "by its events the alarm came %d s after the census (10 s delay)" % delay
            return Outcome(False, "%s: %s / %s" % (why, census[0], silent[0]), figures)
        shown = stamp(silent[0])
        if abs(shown - (time.time() + step_s)) > 120:
            return Outcome(False, "the event's timestamp ignores the step: " + silent[0], figures)
        return Outcome(True, "silent alarm %.1f s after polling began, %d s after the census by "
                       "its own stamps (10 s delay); the event stamped with the stepped clock"
                       % (waited, delay), figures)  # fmt: skip

    return run


fault("wall-clock-back-1h", "the wall clock steps back 1 h: the silent-module alarm comes on "
      "time (10 s), events carry the new time")(_clock_fault(-3600))  # fmt: skip
fault("wall-clock-ahead-1h", "the wall clock steps ahead 1 h: no timer fires early, the alarm "
      "comes on time")(_clock_fault(3600))  # fmt: skip


# --------------------------------------------------------------------------- network, bus


def poll_rate(rig: Rig, seconds: float) -> float:
    p0 = rig.polls()
    t0 = time.monotonic()
    time.sleep(seconds)
    return (rig.polls() - p0) / (time.monotonic() - t0)


@fault("slow-clients-400", "400 half-open connections to the status page: polling keeps >= 90 % "
       "of its rate, the page still answers")  # fmt: skip
def slow_clients(rig: Rig) -> Outcome:
    r = Running(rig, "slow", serve=True)
    if not r.ok:
        return r.why_not()
    if not r.url:
        r.stop()
        return Outcome(False, "the status page address was not printed: " + tail(r.m.output()))
    host, port = re.match(r"http://([\d.]+):(\d+)/", r.url).groups()  # type: ignore[union-attr]
    wait(lambda: r.status() is not None and bool(r.states()), 20)
    before = poll_rate(rig, 8)
    socks = []
    try:
        for i in range(400):
            try:
                s = socket.create_connection((host, int(port)), timeout=5)
            except OSError:
                continue
            if i % 2:
                s.sendall(b"GET /api/status HTTP/1.1\r\n")  # never finished
            socks.append(s)
        during = poll_rate(rig, 8)
        t0 = time.monotonic()
        snap = r.status(timeout_s=5)
        page_s = time.monotonic() - t0
    finally:
        for s in socks:
            s.close()
    after = poll_rate(rig, 8)
    alive = r.m.alive()
    r.stop()
    base = (before + after) / 2
    ratio = during / base if base else 0.0
    figures = {"poll_rate_ratio": round(ratio, 3), "polls_per_s": round(base, 1)}
    if not alive or snap is None:
        return Outcome(False, "the status page did not answer with 400 slow clients open",
                       figures)  # fmt: skip
    return Outcome(ratio >= 0.9, "%d connections held open: %.1f polls/s vs %.1f without "
                   "(ratio %.2f); the page answered in %.2f s"
                   % (len(socks), during, base, ratio, page_s), figures)  # fmt: skip


class GarbageDrop:
    """A drop on the hub that sends random bytes (a broken device, a bad cable)."""

    def __init__(self, rig: Rig, burst: int = 48, every_s: float = 0.02) -> None:
        assert rig.hub is not None
        self.sock = socket.create_connection(("127.0.0.1", rig.hub.port))
        self.burst = burst
        self.every_s = every_s
        self.sent = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        rng = random.Random(12)
        while not self._stop.is_set():
            data = bytes(rng.getrandbits(8) for _ in range(self.burst))
            try:
                self.sock.sendall(data)
            except OSError:
                return
            self.sent += len(data)
            time.sleep(self.every_s)

    def close(self) -> None:
        self._stop.set()
        self._t.join(timeout=2)
        self.sock.close()


@fault("bus-garbage-flood", "random bytes flood the bus for 10 s: the manager keeps running and "
       "polling, and every module reads ok again within 20 s after", fast=True)  # fmt: skip
def garbage_flood(rig: Rig) -> Outcome:
    r = Running(rig, "garbage", serve=True)
    if not r.ok:
        return r.why_not()
    wait(lambda: r.states() == ["ok"] * rig.module_count, 20)
    polls0 = rig.polls()
    flood = GarbageDrop(rig)
    try:
        end = time.monotonic() + 10
        while time.monotonic() < end and r.m.alive():
            time.sleep(0.2)
    finally:
        flood.close()
    polls = rig.polls() - polls0
    back = wait(lambda: r.states() == ["ok"] * rig.module_count, 20)
    alive = r.m.alive()
    contact = rig.contact_energised()
    r.stop()
    detail = "%d garbage bytes in 10 s; %d polls meanwhile" % (flood.sent, polls)
    if not alive:
        return Outcome(False, detail + "; the manager exited: " + tail(r.m.output()))
    if back is None:
        return Outcome(False, detail + "; modules not all ok 20 s after: %s" % r.states())
    if polls < 10 or not contact:
        return Outcome(False, detail + "; polling stalled or the contact dropped")
    return Outcome(True, detail + "; all modules ok %.1f s after it stopped" % back)


@fault("module-lost-mid-cycle", "a module board dies while polled: its silent-module alarm comes "
       "after the delay (contact drops), the other stays ok; it clears when back")  # fmt: skip
def module_lost(rig: Rig) -> Outcome:
    from stringcare.vboard import VirtualBoard

    r = Running(rig, "lost", config=site_config(rig.module_count, silent=SILENT), serve=True)
    if not r.ok:
        return r.why_not()
    wait(lambda: r.states() == ["ok"] * rig.module_count, 20)
    vb = rig.boards[-1]
    t0 = time.monotonic()
    vb.stop()
    alarm = wait(lambda: not rig.contact_energised(), 40)
    states = r.states()
    fresh = VirtualBoard(vb.flash_dir, vb.board, bus=rig.hub, env={
        "block_uv": MODULE_UV[(len(rig.boards) - 1) % 2],
        "uid": "53545247000003%02x" % (len(rig.boards) - 1)}).start()  # fmt: skip
    rig.boards[-1] = fresh
    back = wait(lambda: rig.contact_energised(), 60)
    r.stop()
    if alarm is None:
        return Outcome(False, "no alarm on the contact 40 s after the module died")
    lost_s = time.monotonic() - t0 if alarm is None else alarm
    if not states or states[-1] != "silent" or any(s != "ok" for s in states[:-1]):
        return Outcome(False, "states while it was gone: %s" % states)
    if back is None:
        return Outcome(False, "the alarm did not clear within 60 s of the module's return")
    return Outcome(True, "contact dropped %.1f s after the board died (10 s delay), states %s; "
                   "cleared %.1f s after it came back" % (lost_s, states, back),
                   {"silent_alarm_s": round(lost_s, 1)})  # fmt: skip


@fault("duplicate-module-address", "a second device answers as module 2 with 65 V / -40 °C: an "
       "event and a warning name module 2, its readings are not used")  # fmt: skip
def duplicate_address(rig: Rig) -> Outcome:
    from module_fw.responder import Responder
    from module_fw.state import ModuleState

    assert rig.hub is not None
    r = Running(rig, "duplicate", serve=True)
    if not r.ok:
        return r.why_not()
    wait(lambda: r.states() == ["ok"] * rig.module_count, 20)
    m = ModuleState(bytes([0x5C, 0xDD, 0, 0, 0, 0, 0, 2]), variant_id=3)
    m.address = 2
    m.voltage_uv = 65000000  # saturates at 41.9 V on the wire: still no block's
    m.temp_mc = -40000
    dup = HubDevice(rig.hub, Responder(m))
    try:
        seen = wait(lambda: any("implausible" in ln or "duplicate" in ln
                                for ln in event_lines(r.m.output())), 30)  # fmt: skip
        snap = r.status()
    finally:
        dup.close()
    r.stop()
    out = r.m.output()
    strings = (snap or {}).get("strings", [])
    volts = [mm["voltage_v"] for s in strings for mm in s["modules"]]
    states = [mm["state"] for s in strings for mm in s["modules"]]
    # used = in the string's average or target (the page may still show what was read)
    used = any((s.get("average_v") or 0) > 20 or (s.get("target_v") or 0) > 20 for s in strings)
    shown = "states %s, voltages %s, average %s V" % (
        states, volts, [s.get("average_v") for s in strings])  # fmt: skip
    if seen is None:
        return Outcome(False, "no event or warning about module 2 answering twice within 30 s "
                       "(%s)" % shown)  # fmt: skip
    line = next(ln for ln in event_lines(out) if "implausible" in ln or "duplicate" in ln)
    if "module 2" not in line or used:
        return Outcome(False, "event %r; %s" % (line, shown))
    return Outcome(True, "event %r; %s" % (line, shown))


# --------------------------------------------------------------------------- storage


STORE_WORDS = ("history store:", "event log:", "storage")


def _storage_event(out: str) -> str | None:
    """The first event (or warning line) about a store: 'history store: write failed
    (errno 5)', 'event log: cannot be opened (errno 28)', ..."""
    for ln in event_lines(out) + [ln.strip() for ln in out.splitlines()]:
        if any(w in ln.lower() for w in STORE_WORDS):
            return ln
    return None


def _storage_check(rig: Rig, name: str, args: list[str], data: Path,
                   settle_s: float = 12) -> Outcome:  # fmt: skip
    r = Running(rig, name, args, data=data)
    if not r.ok:
        return r.why_not()
    broken = monitoring_goes_on(r, settle_s, name)
    out = r.m.output()
    r.stop()
    if broken is not None:
        return broken
    ev = _storage_event(out)
    if ev is None:
        return Outcome(False, "monitoring went on, but no storage event or warning was "
                       "shown: " + tail(out))  # fmt: skip
    return Outcome(True, "polling and the contact went on for %.0f s; shown: %s"
                   % (settle_s, ev))  # fmt: skip


Prepare = Callable[[Path], None] | None


def _storage_fault(name: str, args: list[str], prepare: Prepare = None) -> Callable[[Rig], Outcome]:
    def run(rig: Rig) -> Outcome:
        data = rig.fresh_data(name)
        if prepare is not None:
            prepare(data)
        return _storage_check(rig, name, args, data)

    return run


fault(
    "history-eio",
    "EIO on every history write once running (a dying SD card): polling, alarms and the "
    "contact go on; a storage event and warning",
)(_storage_fault("eio", ["--fault-storage", "history:EIO@0"]))


def _full_disk(data: Path) -> None:
    data.mkdir(parents=True, exist_ok=True)
    for f in ("history.bin", "events.bin"):
        (data / f).symlink_to("/dev/full")  # the kernel's ENOSPC on every write


fault(
    "disk-full-at-start",
    "ENOSPC from the first write (the disk is full at first start): "
    "the manager starts and monitors, a storage event and warning",
    fast=True,
)(  # fmt: skip
    _storage_fault("enospc0", [], _full_disk)
)
fault(
    "disk-full-at-run-time",
    "ENOSPC on every history and event write once running (the files were made): "
    "monitoring goes on, a storage event and warning",
)(
    _storage_fault(
        "enospc",
        ["--fault-storage", "history:ENOSPC@0", "--fault-storage", "events:ENOSPC@0"],
    )
)


def _foreign_store(data: Path) -> None:
    from manager_fw import blockdev
    from manager_fw.history_store import HistoryWriter

    data.mkdir(parents=True, exist_ok=True)
    dev = blockdev.FileBlockDevice(str(data / "history.bin"), 2 * 1024 * 1024)
    write_snapshots(HistoryWriter(dev, [4, 4], segment_size=16384), 8)  # a Pico's store
    dev.close()


def write_snapshots(w: Any, modules: int, count: int = 3) -> None:
    """A few snapshots of `modules` modules (a store that really holds something)."""
    for k in range(count):
        w.append(210000000 + 600 * k, 0, [13500000] * modules, [25000] * modules,
                 [0] * modules, [0] * modules, [0] * modules, [-1] * 2)  # fmt: skip


fault(
    "foreign-history-store",
    "history.bin of another geometry (copied from a board): the "
    "manager starts and monitors; the store is set aside with an event",
)(  # fmt: skip
    _storage_fault("foreign", [], _foreign_store)
)


def _forged_header(data: Path) -> None:
    from manager_fw import blockdev
    from manager_fw import ring as rg
    from manager_fw.history_store import HistoryWriter

    data.mkdir(parents=True, exist_ok=True)
    path = str(data / "history.bin")
    dev = blockdev.FileBlockDevice(path, 16 * 1024 * 1024)
    write_snapshots(HistoryWriter(dev, [2], segment_size=65536), 2)
    dev.close()
    raw = bytearray(Path(path).read_bytes()[: rg.SEGMENT_HEADER_SIZE])
    p = rg.HEADER_SIZE
    rg.put_u32(raw, p + 16, 0x3FFFFFF0)  # an absurd segment count, with a valid CRC
    n = rg.HEADER_SIZE + rg.SEGMENT_PAYLOAD_SIZE
    rg.put_u16(raw, n, rg.crc16(raw, 1, n))
    with open(path, "r+b") as f:
        f.write(raw)


fault(
    "forged-history-header",
    "a segment header with an absurd segment count (valid CRC): "
    "the manager starts and monitors; the store is refused quickly with an event",
)(  # fmt: skip
    _storage_fault("forged", [], _forged_header)
)


@fault("read-only-filesystem", "the data folder is on a read-only filesystem: the manager starts "
       "and monitors, a storage event and warning")  # fmt: skip
def read_only(rig: Rig) -> Outcome:
    data = rig.fresh_data("rofs")
    data.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(data)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        return Outcome(False, "could not mount a read-only filesystem to test on (needs root): "
                       + mounted.stderr.strip())  # fmt: skip
    try:
        return _storage_check(rig, "rofs-run", [], data)
    finally:
        subprocess.run(["umount", str(data)], capture_output=True)


@fault("power-loss-during-history-write", "power cut while a history frame is written (the frame "
       "left half-programmed): the manager starts again and monitors; every snapshot before "
       "it stays readable")  # fmt: skip
def power_loss(rig: Rig) -> Outcome:
    data = rig.fresh_data("powercut")
    hist = data / "history.bin"
    for k in range(3):  # each start writes a snapshot with its first cycle
        r = Running(rig, "powercut%d" % k, data=data)
        if not r.ok:
            return r.why_not()

        def written(k: int = k) -> bool:
            return (snapshots(hist) or 0) > k

        wait(written, 20)
        r.m.signal(signal.SIGKILL)  # the last one: the power goes
        r.stop()
        rig.reset_box()
    before = snapshots(hist)
    raw = bytearray(hist.read_bytes())
    end = len(raw.rstrip(b"\xff"))
    if not before or end == 0:
        return Outcome(False, "no history was written before the cut")
    torn = max(end - 7, 0)
    raw[torn:end] = b"\xff" * (end - torn)  # the last frame's tail never got programmed
    hist.write_bytes(bytes(raw))
    cut = snapshots(hist)
    again = Running(rig, "powercut-after", data=data)
    if not again.ok:
        return again.why_not()
    broken = monitoring_goes_on(again, 8, "after the power cut")
    again.stop()
    if broken is not None:
        return broken
    after = snapshots(hist)
    detail = "snapshots readable: %s written, %s after the cut, %s after the restart" % (
        before, cut, after)  # fmt: skip
    if after is None or after < before - 1:
        return Outcome(False, detail)
    return Outcome(True, "restarted and monitored; " + detail)


def snapshots(path: Path) -> int | None:
    """Snapshots `stringcare history info` reads from a store (None: unreadable)."""
    if not path.exists():
        return None
    exe = str(Path(sys.executable).parent / "stringcare")
    proc = subprocess.run([exe, "history", "info", str(path)], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    hit = re.search(r"(\d+) snapshots", proc.stdout)
    return int(hit.group(1)) if hit else None


# --------------------------------------------------------------------------- configuration


def _config_fault(name: str, bad: bytes) -> Callable[[Rig], Outcome]:
    def run(rig: Rig) -> Outcome:
        from manager_fw.config import ConfigStore

        path = rig.workdir / (name + "-site.json")
        path.write_text(json.dumps(site_config(rig.module_count)))
        store = ConfigStore(str(path))
        store.load()  # a good start first: it keeps site.json.bak, the last good copy
        path.write_bytes(bad)
        r = Running(rig, name, config_path=path)
        if not r.ok:
            return r.why_not()
        broken = monitoring_goes_on(r, 5, name)
        out = r.m.output()
        r.stop()
        if broken is not None:
            return broken
        if "Traceback" in out:
            return Outcome(False, "a traceback was printed: " + tail(out))
        told = [ln.strip() for ln in out.splitlines() if "site.json" in ln]
        recorded = [ln for ln in event_lines(out) if "config" in ln and "fallback" in ln]
        if not told or not recorded:
            return Outcome(False, "ran on the fallback, but %s: %s" % (
                "no message naming site.json" if not told else "no config event recorded",
                tail(out)))  # fmt: skip
        return Outcome(True, "ran on the last good copy; told %r; event %r"
                       % (told[0], recorded[0]))  # fmt: skip

    return run


fault(
    "site-json-not-utf8",
    "a non-UTF-8 byte in site.json: the manager runs on the last good "
    "copy (site.json.bak), names the problem, records the fallback",
    fast=True,
)(  # fmt: skip
    _config_fault("nonutf8", b'{"site": "caf\xe9", "strings": [{"modules": 2}]}')
)
fault(
    "site-json-deep-nesting",
    "site.json nested 30 000 deep (60 KB, under the size limit): the manager runs on the last "
    "good copy, names the problem, records the fallback",
)(  # fmt: skip
    _config_fault("nesting", b'{"site": ' + b"[" * 30000 + b"]" * 30000 + b"}")
)


# --------------------------------------------------------------------------- the campaign


def names() -> list[str]:
    return [f.name for f in FAULTS]


def select(wanted: list[str], fast: bool = False) -> list[Fault]:
    if fast:
        return [f for f in FAULTS if f.fast]
    if not wanted:
        return list(FAULTS)
    by = {f.name: f for f in FAULTS}
    return [by[n] for n in wanted]


def unmount_under(folder: Path) -> None:
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return
    for line in mounts:
        parts = line.split()
        if len(parts) > 1 and parts[1].startswith(str(folder) + "/"):
            subprocess.run(["umount", parts[1]], capture_output=True)


def bring_up(workdir: Path, root: Path, progress: Callable[[str], None]) -> Rig:
    """The rig, started; one more try when a board's deploy fails (a deploy is not what
    the campaign tests; the second failure is reported with its cause)."""
    for attempt in (1, 2):
        rig = Rig(workdir / ("try%d" % attempt), root, progress=progress)
        try:
            return rig.start()
        except Exception as exc:  # noqa: BLE001 - any bring-up failure: retry, then report
            rig.close()
            progress("rig bring-up failed (%s: %s)%s" % (type(exc).__name__, exc,
                     "; trying again" if attempt == 1 else ""))  # fmt: skip
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def run_faults(faults: list[Fault], workdir: Path, root: Path,
               progress: Callable[[str], None]) -> dict[str, Any]:  # fmt: skip
    results: list[dict[str, Any]] = []
    t_all = time.monotonic()
    if workdir.exists():
        unmount_under(workdir)  # a read-only mount left by an interrupted run
        shutil.rmtree(workdir, ignore_errors=True)
    rig = bring_up(workdir, root, progress)
    with rig:
        for f in faults:
            progress("%s ..." % f.name)
            if rig.contact_energised():
                rig.reset_box()
            t0 = time.monotonic()
            try:
                o = f.run(rig)
            except Exception as exc:  # noqa: BLE001 - a fault that cannot run is broken
                o = Outcome(False, "the fault could not run: %s: %s" % (type(exc).__name__, exc))
            for m in rig.managers:  # nothing of this fault keeps running into the next
                if m.alive():
                    m.stop()
            if wait(lambda: not rig.contact_energised(), 15) is None:
                rig.reset_box()  # the next fault starts from a released contact
            results.append({"name": f.name, "guarantee": f.guarantee, "held": o.held,
                            "detail": o.detail, "figures": o.figures,
                            "seconds": round(time.monotonic() - t0, 1)})  # fmt: skip
            progress("  %s  %s" % ("held  " if o.held else "BROKEN", o.detail))
    figures: dict[str, float] = {
        "faults.total": len(results),
        "faults.held": sum(1 for r in results if r["held"]),
    }
    for r in results:
        if r["name"] == "manager-sigkill":
            figures["faults.alarm_contact_drop_s"] = r["figures"].get("alarm_contact_drop_s", -1)
        if r["name"] == "slow-clients-400":
            figures["faults.poll_rate_ratio.slow_clients"] = r["figures"].get("poll_rate_ratio", 0)
    return {"faults": results, "figures": figures,
            "seconds": round(time.monotonic() - t_all, 1)}  # fmt: skip
