# Runs one test function inside the MicroPython unix port; started by the
# dual-interpreter pytest plugin (tools/stringcare/dev/dualtest_plugin.py).
#
#   micropython -X heapsize=... mp_runner.py MODULE FUNCTION BUDGET_BYTES PATH...
#
# Firmware on a board is frozen into the MicroPython image: its bytecode, constant
# strings and constant tuples sit in flash, not in the heap.  The unix port can only
# load .mpy files into the heap, so the runner emulates freezing: it imports the test
# module (and with it the firmware), then estimates what a frozen build would still
# hold in RAM after those imports - every module's globals dict, class dicts, function
# objects, and the arrays, lists, dicts and instances the imports built (walked
# object by object, see _ram_of) - and fills the heap with ballast so that exactly
# BUDGET_BYTES minus that estimate remain free for the test.
#
# PATH entries (the .mpy tree compiled by mpy-cross) replace sys.path.  Prints the
# pass marker on success; on failure prints the MicroPython traceback and exits 1.
import gc
import sys

import micropython

module_name = sys.argv[1]
function_name = sys.argv[2]
budget = int(sys.argv[3])
sys.path[:] = sys.argv[4:]


_ITEMSIZE = {"b": 1, "B": 1, "h": 2, "H": 2, "i": 4, "I": 4, "l": 4, "L": 4, "q": 8, "Q": 8,
             "f": 4, "d": 8}  # fmt: skip
_ARRAY = type(__import__("array").array("b"))
_FUNC = type(_ITEMSIZE.get)
_PYFUNC = type(lambda: 0)
_MODULE = type(sys)


def _dict_ram(n):
    # a MicroPython dict: header plus ~1.5 slots of two words per entry
    return 16 + (n * 3 // 2 + 1) * 16


def _ram_of(obj, seen, depth):
    """Heap a frozen build needs for an object the imports created (conservative)."""
    if obj is None or depth > 6:
        return 0
    t = type(obj)
    if t in (int, bool, str, bytes, float):
        return 0  # small ints are not objects; str/bytes constants are in flash
    if t is _MODULE:
        # a module another one imported: charged on its own if the imports created it
        # (_frozen_ram), not at all if it was there before (sys: walking it would charge
        # every loaded module, in an order that depends on the modules' names)
        return 0
    key = id(obj)
    if key in seen:
        return 0
    seen.add(key)
    if t is bytearray:
        return 16 + len(obj)
    if t is _ARRAY:
        return 16 + len(obj) * _ITEMSIZE.get(repr(obj)[7:8], 4)
    if t is list or t is tuple:
        n = 16 + 8 * len(obj)
        for item in obj:
            n += _ram_of(item, seen, depth + 1)
        return n
    if t is dict:
        n = _dict_ram(len(obj))
        for item in obj.values():
            n += _ram_of(item, seen, depth + 1)
        return n
    if t is _PYFUNC or t is _FUNC:
        return 32
    d = getattr(obj, "__dict__", None)
    n = 32
    if d is not None:
        n += _dict_ram(len(d))
        for item in d.values():
            n += _ram_of(item, seen, depth + 1)
    return n


def _frozen_ram(before):
    seen = set()
    total = 0
    for name in sys.modules:
        if name not in before:
            mod = sys.modules[name]
            total += 32 + _ram_of(mod.__dict__, seen, 0)
    return total


try:
    gc.collect()
    loaded_before = list(sys.modules)
    alloc_before = gc.mem_alloc()
    module = __import__(module_name)
    gc.collect()
    imported = gc.mem_alloc() - alloc_before
    kept = _frozen_ram(loaded_before)
    if kept > imported:
        kept = imported
    room = budget - kept
    if room < 0:
        raise MemoryError(
            "the imports' RAM in a frozen build (%d bytes) exceeds the %d byte budget"
            % (kept, budget)
        )
    # Fill the heap down to `room` free bytes (in chunks: the free space is fragmented).
    ballast = []
    chunk = 16384
    while chunk >= 16:
        excess = gc.mem_free() - room
        if excess <= 32:
            break
        size = chunk if chunk < excess - 16 else excess - 16
        try:
            ballast.append(bytearray(size))
        except MemoryError:
            chunk //= 2
    gc.collect()
    baseline = micropython.mem_current()
    func = getattr(module, function_name)
    func()
except Exception as exc:  # noqa: BLE001 - every failure is reported, never hidden
    sys.print_exception(exc, sys.stdout)
    sys.exit(1)
# allocation high-water mark above the start of the test, garbage included
print("@@STRINGCARE-HEAP-PEAK@@", kept + micropython.mem_peak() - baseline)
print("@@STRINGCARE-PASS@@")
