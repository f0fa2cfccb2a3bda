"""Cut a deploy at every step and check the board still boots: the campaign behind
host_tests/hil/test_deploy_cut.py and the `deploy.interrupt_*` benchmarks.

One virtual unix_module board (tools/stringcare/vboard.py) runs the whole campaign:

1. bundle "old" is deployed for real (stringcare deploy, real mpremote); the flash
   directory is then kept as an image;
2. bundle "new" (same firmware, another build label: every file goes to a new folder)
   is deployed with the flash emulation logging every flash operation (file create,
   write, rename, remove, mkdir: vboard_rom.py) - the list of places to cut;
3. for each cut: the old image is put back, the board is powered up with a power cut
   armed at that operation (mid-write: half the bytes reach the flash), the deploy of
   "new" runs until the power fails (the board stops, its USB port goes away), the board
   powers up again, and the loader's line says which bundle it booted; the case is
   recovered when that is "old" or "new" and the firmware's start line follows.

Cuts: before each file of the bundle is created (a file boundary), in the middle of
the first write of each file written in more than one piece and of every third other
file (mid-file), and at every operation of the switch (key, pointer, loader, cleanup,
settings).

FAT (fat=True): the board renames over a file as MicroPython's FAT driver does, in two
flash operations (remove, then rename), so cuts also fall between the two: the pointer
missing while its new text waits in stringcare_active.tmp (the loader reads it), and
/main.py missing while the new loader waits in main.py.tmp (/boot.py finishes the
rename).  docs/deploy.md, "Filesystems".
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stringcare import bundle as bundle_mod
from stringcare.deploy import Deployer
from stringcare.vboard import VirtualBoard

BOOT_RE = re.compile(rb"stringcare: boot: (bundle (b/[0-9a-f]+)|NO VALID FIRMWARE[^\r\n]*)")
START = b"stringcare: module "


class Case:
    def __init__(self, op: int, mid: bool, what: str) -> None:
        self.op = op
        self.mid = mid
        self.what = what
        self.booted = ""
        self.started = False
        self.deploy_error = ""
        self.seconds = 0.0
        self.switch = False  # a cut in the switch, after the new bundle's files are in

    def label(self) -> str:
        return "%s%s" % ("mid-write of " if self.mid else "before ", self.what)


def parse_ops(text: str) -> list[tuple[int, str, str, int]]:
    ops = []
    for line in text.splitlines():
        parts = line.split(" ")
        n, kind = int(parts[0]), parts[1]
        size = int(parts[-1]) if kind == "write" else -1
        path = " ".join(parts[2:-1] if kind == "write" else parts[2:])
        ops.append((n, kind, path, size))
    return ops


def choose_cuts(ops: list[tuple[int, str, str, int]], folder: str) -> list[Case]:
    cases: list[Case] = []
    first_write: dict[str, tuple[int, int]] = {}
    writes: dict[str, int] = {}
    for n, kind, path, _ in ops:
        if kind == "write":
            writes[path] = writes.get(path, 0) + 1
            first_write.setdefault(path, (n, writes[path]))
    switch_from = None
    k = 0
    multi = 0
    for n, kind, path, _ in ops:
        in_bundle = path.startswith(folder + "/") or path == folder
        if in_bundle and kind == "create":
            cases.append(Case(n, False, "creating " + path))
            if path in first_write:
                if writes[path] > 1:
                    multi += 1
                if (writes[path] > 1 and multi % 2) or (writes[path] == 1 and k % 4 == 0):
                    cases.append(Case(first_write[path][0], True, path))
            k += 1
        elif in_bundle and kind == "mkdir" and path == folder:
            cases.append(Case(n, False, "mkdir " + path))
        elif not in_bundle and kind != "mkdir" and switch_from is None and k:
            switch_from = n
    for n, kind, path, _ in ops:
        if switch_from is None or n < switch_from:
            continue
        if kind != "write":
            cases.append(Case(n, False, "%s %s" % (kind, path)))
        elif first_write[path][0] == n:
            cases.append(Case(n, True, path))
        else:
            continue
        cases[-1].switch = True
    return cases


def switch_op(ops: list[tuple[int, str, str, int]]) -> int:
    """The last operation a cut may stop before and still boot the old bundle: the
    pointer's rename (on FAT, the removal of the old pointer that comes first)."""
    for n, kind, path, _ in ops:
        if kind == "rename" and path.endswith(" stringcare_active"):
            return n
        if kind == "remove" and path == "stringcare_active":
            return n
    raise ValueError("no pointer rename among the flash operations")


def _wait(vb: VirtualBoard, start: int, timeout_s: float) -> tuple[str, bool]:
    """The bundle the loader booted (or its NO VALID FIRMWARE line) and whether the
    firmware started, from console offset start; waits up to timeout_s."""
    deadline = time.monotonic() + timeout_s
    booted = ""
    while time.monotonic() < deadline:
        tail = bytes(vb.console[start:])
        found = list(BOOT_RE.finditer(tail))
        m = found[-1] if found else None
        if m is not None:
            booted = (m.group(2) or m.group(1)).decode()
            if not booted.startswith("b/"):
                return booted, False
            if START in tail[m.end() :]:
                return booted, True
        time.sleep(0.02)
    return booted, False


class Campaign:
    def __init__(
        self, root: Path, work: Path, progress: Callable[[str], None] = print, fat: bool = False
    ) -> None:
        self.root = root
        self.fat = fat
        self.work = Path(work)
        self.progress = progress
        self.cases: list[Case] = []
        self.resumed: dict[str, Any] = {}

    def _deploy(self, vb: VirtualBoard, b: bundle_mod.Bundle) -> Deployer:
        return Deployer(
            self.root, None, vb.device, bundle_dir=b.out_dir, progress=lambda t: None
        ).run()

    def _restore(self, vb: VirtualBoard, **env: Any) -> int:
        vb.power_off()
        flash = vb.flash_dir
        shutil.rmtree(flash)
        shutil.copytree(self.image, flash, symlinks=True)
        for key in ("power_cut_at", "power_cut_mid", "flash_log"):
            vb.config.pop(key, None)
        vb.set_env(**env)
        start = len(vb.console)
        vb.power_on()
        return start

    def run(self, limit: int = 0, sample: int = 1) -> list[Case]:
        """Cut at each place of the plan (self.planned: all of them); sample=N cuts at
        every Nth file-copy place and at every place of the switch, the step where old
        and new meet (the test's short run; `make bench` cuts everywhere)."""
        self.work.mkdir(parents=True, exist_ok=True)
        old = bundle_mod.build(self.root, "unix_module", self.work / "old", label="cut-old")
        new = bundle_mod.build(self.root, "unix_module", self.work / "new", label="cut-new")
        self.old, self.new = old, new
        self.image = self.work / "image-old"
        log = self.work / "flash-ops.txt"
        emulate = {"fat_rename": True} if self.fat else None
        with VirtualBoard(self.work / "flash", emulate=emulate) as vb:
            self._deploy(vb, old)
            vb.power_off()
            shutil.rmtree(self.image, ignore_errors=True)
            shutil.copytree(vb.flash_dir, self.image, symlinks=True)
            # the old board's loader is from an earlier release: the deploy replaces it
            with (self.image / "main.py").open("a") as f:
                f.write("# (loader of an earlier release)\n")
            log.unlink(missing_ok=True)
            start = self._restore(vb, flash_log=str(log))
            booted, ok = _wait(vb, start, 30)
            if booted != old.folder or not ok:
                raise RuntimeError("the old bundle did not start: %r" % booted)
            full = self._deploy(vb, new)
            ops = parse_ops(log.read_text())
            self.switch_op = switch_op(ops)
            self.progress(
                "full deploy: %d files, %d flash operations; boots %s"
                % (len(full.copied), len(ops), full.boot_line)
            )
            cases = self.planned = choose_cuts(ops, new.folder)
            if sample > 1:
                copy = [c for c in cases if not c.switch]
                cases = copy[::sample] + [c for c in cases if c.switch]
            if limit:
                cases = cases[:limit]
            for n, case in enumerate(cases, 1):
                t0 = time.monotonic()
                start = self._restore(vb, power_cut_at=case.op, power_cut_mid=case.mid)
                booted, ok = _wait(vb, start, 30)
                if booted != old.folder or not ok:
                    raise RuntimeError("the old bundle did not start before cut %d" % case.op)
                cuts = vb.power_cuts
                start = len(vb.console)
                for _attempt in range(3):
                    try:
                        self._deploy(vb, new)
                        case.deploy_error = "(completed: no cut)"
                    except Exception as exc:  # noqa: BLE001 - any failure: the board is what counts
                        case.deploy_error = str(exc).split("\n")[0][:160]
                    # A deploy that never reached the board (its REPL did not answer the
                    # probe in time: a loaded host) cut nothing: the case is not tried
                    # yet, so deploy again.
                    if not case.deploy_error.startswith("no board on") or vb.power_cuts != cuts:
                        break
                deadline = time.monotonic() + 20
                while vb.power_cuts == cuts and time.monotonic() < deadline:
                    time.sleep(0.02)
                cut_at = vb.console.find(b"vboard: power cut", start)
                case.booted, case.started = _wait(vb, max(cut_at, start), 30)
                case.seconds = time.monotonic() - t0
                self.progress(
                    "  cut %2d/%d at op %3d (%s): boots %s%s"
                    % (
                        n,
                        len(cases),
                        case.op,
                        case.label(),
                        self.name(case.booted),
                        "" if case.started else ", firmware NOT started",
                    )
                )
                self.cases.append(case)
            self._resume(vb, cases)
        return self.cases

    def _resume(self, vb: VirtualBoard, cases: list[Case]) -> None:
        """A deploy cut half way through the copy, then run again to the end: it copies
        only what is missing and the board boots the new bundle."""
        mids = [c for c in cases if c.mid and c.what.startswith(self.new.folder)]
        if not mids:
            return
        case = mids[len(mids) // 2]
        start = self._restore(vb, power_cut_at=case.op, power_cut_mid=True)
        _wait(vb, start, 30)
        cuts = vb.power_cuts
        try:
            self._deploy(vb, self.new)
        except Exception:  # noqa: BLE001, S110 - the cut is the point
            pass
        deadline = time.monotonic() + 20
        while vb.power_cuts == cuts and time.monotonic() < deadline:
            time.sleep(0.02)
        _wait(vb, max(vb.console.find(b"vboard: power cut", start), start), 30)
        again = self._deploy(vb, self.new)
        self.resumed = {
            "cut": case.label(),
            "copied": len(again.copied),
            "kept": len(again.unchanged),
            "boot_line": again.boot_line,
        }
        self.progress(
            "resume after the cut %s: %d files copied, %d kept; %s"
            % (case.label(), len(again.copied), len(again.unchanged), again.boot_line)
        )

    def name(self, folder: str) -> str:
        if folder == self.old.folder:
            return "old"
        if folder == self.new.folder:
            return "new"
        return folder or "nothing"

    def recovered(self) -> int:
        ok = (self.old.folder, self.new.folder)
        return sum(1 for c in self.cases if c.booted in ok and c.started)
