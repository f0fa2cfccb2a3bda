# Runs one test function inside the MicroPython unix port; started by the
# dual-interpreter pytest plugin (tools/stringcare/dev/dualtest_plugin.py).
#
#   micropython -X heapsize=64k mp_runner.py MODULE FUNCTION PATH...
#
# PATH entries (the .mpy tree compiled by mpy-cross) replace sys.path.  Prints the
# pass marker on success; on failure prints the MicroPython traceback and exits 1.
import gc
import sys

import micropython

module_name = sys.argv[1]
function_name = sys.argv[2]
sys.path[:] = sys.argv[3:]

try:
    module = __import__(module_name)
    func = getattr(module, function_name)
    gc.collect()
    func()
except Exception as exc:  # noqa: BLE001 - every failure is reported, never hidden
    sys.print_exception(exc, sys.stdout)
    sys.exit(1)
print("@@STRINGCARE-HEAP-PEAK@@", micropython.mem_peak())
print("@@STRINGCARE-PASS@@")
