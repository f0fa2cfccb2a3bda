"""`stringcare sim --micropython`: every module core in its own MicroPython process.

MPCore stands where the simulator otherwise puts a ModuleCore: it forwards bus bytes,
ADC frames, button and Ri captures to boards/sim/mp_module.py running in the real
MicroPython unix port, and mirrors back what the simulator reads (duty, LED, address,
the reply to send).  The simulated string, the bus and the manager are unchanged, so
the firmware is shown working as MicroPython code in the loop.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from shared import ri
from stringcare.dev import layout

HEAP = "512k"  # code loaded from .mpy files lives in the heap here (a board freezes it)


class MicroPythonModuleError(RuntimeError):
    pass


class _State:
    """The few ModuleState fields the simulator reads."""

    def __init__(self) -> None:
        self.address = 0
        self.addressing = False
        self.ri_busy = False


def compiled_tree() -> Path:
    root = layout.repo_root()
    out = root / "build" / "mpy-sim"
    sources = list(layout.firmware_test_sources(root))
    errors = layout.compile_mpy(root, sources, out, "x64", prune=True)
    if errors:
        raise MicroPythonModuleError("mpy-cross failed:\n" + "\n".join(errors))
    return out


class MPCore:
    def __init__(
        self,
        uid: bytes,
        variant_id: int,
        adc_kind: int,
        store_record: bytes,
        tree: Path,
        frame_ms: int,
        vadc: int = 0,
    ) -> None:
        exe = str(Path(sys.executable).parent / "micropython")
        script = layout.repo_root() / "boards" / "sim" / "mp_module.py"
        env = {"MICROPYPATH": str(tree)}
        self.proc = subprocess.Popen(
            [exe, "-X", "heapsize=" + HEAP, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            bufsize=1,
        )
        self.adc_kind = adc_kind
        self.variant_id = variant_id
        self.state = _State()
        self.duty = 0
        self.led = 0
        self.tx = bytearray(80)
        self.tx_delay_us = 0
        self._internal_x2 = 0
        self._probe_x2: int | None = None
        self._voltage_x2 = 0
        self._plan: ri.RiPlan | None = None
        self._ask("S " + store_record.hex())
        self._ask("I %s %d %d %d %d" % (uid.hex(), variant_id, adc_kind, frame_ms, vadc))

    def _ask(self, line: str) -> str:
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            answer = proc.stdout.readline()
        except BrokenPipeError:
            answer = ""
        if not answer:
            err = proc.stderr.read() if proc.stderr else ""
            raise MicroPythonModuleError(
                "the MicroPython module process stopped answering (%s):\n%s"
                % (line.split()[0], err[-2000:])
            )
        if answer.startswith("ERR"):
            raise MicroPythonModuleError(answer.strip())
        return answer.strip()

    def _reply(self, answer: str) -> int:
        parts = answer.split()
        n = int(parts[1])
        if n:
            self.tx[:n] = bytes.fromhex(parts[3])
            self.tx_delay_us = int(parts[2])
        return n

    # --- the ModuleCore interface the simulator uses -----------------------------------

    def bus_bytes(self, data: Any, count: int, now_ms: int) -> int:
        return self._reply(self._ask("B %d %s" % (now_ms, bytes(data[:count]).hex())))

    def bus_idle(self, now_ms: int) -> int:
        return self._reply(self._ask("D %d" % now_ms))

    def temperature_frame(self, internal_x2: int, probe_x2: int | None, now_ms: int) -> None:
        self._internal_x2 = internal_x2
        self._probe_x2 = probe_x2

    def voltage_frame(self, sum_x2: int, now_ms: int) -> None:
        self._voltage_x2 = sum_x2

    def tick(self, now_ms: int, button: bool) -> None:
        probe = "-" if self._probe_x2 is None else str(self._probe_x2)
        parts = self._ask(
            "F %d %d %s %d %d"
            % (now_ms, self._internal_x2, probe, self._voltage_x2, 1 if button else 0)
        ).split()
        self.duty = int(parts[1])
        self.led = int(parts[2])
        self.state.address = int(parts[3])
        self.state.addressing = parts[4] == "1"
        self.state.ri_busy = parts[5] == "1"

    def _plan_from(self, answer: str) -> ri.RiPlan | None:
        if answer == "N":
            self._plan = None
            return None
        _, method, gain_range, gain_ppm = answer.split()
        self._plan = ri.plan_for(
            self.variant_id, int(method), int(gain_range), self.adc_kind, int(gain_ppm)
        )
        return self._plan

    def ri_pending(self, now_ms: int) -> ri.RiPlan | None:
        return self._plan_from(self._ask("P %d" % now_ms))

    def ri_feed(self, vbuf: Any, ibuf: Any, count: int) -> None:
        v = b"".join(int(x).to_bytes(2, "little") for x in vbuf[:count])
        i = b"".join(int(x).to_bytes(2, "little") for x in ibuf[:count])
        self._ask("V %s %s" % (v.hex(), i.hex()))

    def ri_done(self, now_ms: int) -> ri.RiPlan | None:
        return self._plan_from(self._ask("E %d" % now_ms))

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin is not None
                self.proc.stdin.write("Q\n")
                self.proc.stdin.flush()
                self.proc.wait(timeout=5)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.proc.kill()
