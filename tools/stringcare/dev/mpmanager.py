"""The manager firmware on the virtual unix_manager board, as a process: the real
firmware/manager/main.py in the MicroPython unix port, its files in a run directory the
way a board's filesystem holds them (site.json, the bundle stamp, the settings, the
site key), microdot as a bundle carries it (stringcare.bundle.library_sources).  Used by
the HIL test of the Pico W's web interface and the web benchmark."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from stringcare import bundle
from stringcare.dev import layout


class ManagerProcess:
    def __init__(self, run: Path, site: dict, settings: dict, key_hex: str | None = None):
        root = layout.repo_root()
        self.run = run
        run.mkdir(parents=True, exist_ok=True)
        if key_hex:
            (run / "site_key.hex").write_text(key_hex + "\n")
        (run / "site.json").write_text(json.dumps(site))
        board = json.loads((root / "boards/unix_manager/board.json").read_text())
        (run / "stringcare_bundle.py").write_text("BOARD = %r\n" % board)
        (run / "stringcare_settings.py").write_text("SETTINGS = %r\n" % settings)
        self.lib = run / "lib"  # only what a bundle carries of microdot
        for site_dir, path in bundle.library_sources(root, "pico_w_manager"):
            (self.lib / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(site_dir / path, self.lib / path)
        self.lines: list[str] = []
        self.proc: subprocess.Popen | None = None

    def start(self, bus_url: str | None = None, heap: str = "1024k", run_s: int = 600):
        root = layout.repo_root()
        env = dict(os.environ)
        env.pop("STRINGCARE_BUS", None)
        env.update(
            MICROPYPATH="%s:%s:%s:.frozen" % (self.run, root, self.lib),  # .frozen: asyncio
            STRINGCARE_RUN_S=str(run_s),
        )
        if bus_url:
            env["STRINGCARE_BUS"] = bus_url.removeprefix("socket://")
        exe = str(Path(sys.executable).parent / "micropython")
        self.proc = subprocess.Popen(
            [exe, "-X", "heapsize=" + heap, str(root / "firmware/manager/main.py")],
            cwd=self.run, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        proc = self.proc
        threading.Thread(target=lambda: self.lines.extend(proc.stdout or []), daemon=True).start()
        return self

    def console(self) -> str:
        return "".join(self.lines)

    def wait_for(self, what: str, check: Any, timeout_s: float = 60) -> Any:
        """check()'s first true value, polled until timeout_s (the process must live)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError("the manager stopped:\n" + self.console())
            time.sleep(0.2)
        raise RuntimeError("%s: not within %d s:\n%s" % (what, timeout_s, self.console()))

    def setup_code(self) -> str:
        def found() -> str | None:
            for line in list(self.lines):
                m = re.search(r"web setup code: (\d{8})", line)
                if m:
                    return m.group(1)
            return None

        return str(self.wait_for("the web setup code on the console", found))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait()
