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
_CHUNKS = 320  # ballast pieces at most (the list is taken before the room)


def _fill(room):
    # The case's room as one free block, as the tail of a board's heap after boot: the
    # room is taken first (first-fit puts it in the free tail: the gaps among the
    # imports are smaller), then every other free block is filled with ballast (the
    # largest piece that fits, down to 16 bytes), and the room is freed.  Left to the
    # gaps among the imports, a case's room came in pieces of a few KB that varied with
    # what earlier cases left: a 1 KB array then found room in one run and not the next.
    _ballast.extend([None] * _CHUNKS)
    gc.collect()
    if gc.mem_free() - room <= 64:
        return  # no more than the room is free
    try:
        hold = bytearray(room - 64 if room > 64 else 0)
    except MemoryError:
        raise MemoryError("the runner found no free block of the case's %d bytes" % room) from None
    n = 0
    chunk = 16384
    while chunk >= 16 and n < _CHUNKS:
        try:
            _ballast[n] = bytearray(chunk)
            n += 1
        except MemoryError:
            chunk //= 2
    del hold  # the room, free
    gc.collect()
    # the room exactly (the pieces above may leave up to ~1 KB over it in small gaps)
    chunk = 1024
    while chunk >= 16 and n < _CHUNKS:
        excess = gc.mem_free() - room
        if excess <= 48:
            break
        size = chunk if chunk < excess - 32 else excess - 32
        try:
            _ballast[n] = bytearray(size)
            n += 1
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
