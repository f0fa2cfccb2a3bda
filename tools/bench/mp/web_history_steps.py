# Runs inside the MicroPython unix port for tools/bench/bench_web.py.
#   micropython web_history_steps.py ROOT STORE MODULE MODULE_COUNT RUNS
# A module page's history reading (manager_fw/web/module_history.py) over a store file,
# RUNS times: each step's time (a segment header, one frame) taken as its least over
# the runs, so a step the OS preempted in one run counts with its time of another.
# Prints "<largest step us> <sum of the steps us> <steps>".
import sys
import time

sys.path[:0] = [sys.argv[1]]

from manager_fw.blockdev import FileBlockDevice  # noqa: E402
from manager_fw.web.module_history import ModuleHistory  # noqa: E402

dev = FileBlockDevice(sys.argv[2], readonly=True)
module, count, runs = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
best = None
for _ in range(runs):
    reading = ModuleHistory(dev, module, count)
    took = []
    t0 = time.ticks_us()
    for _ in reading.steps():
        t1 = time.ticks_us()
        took.append(time.ticks_diff(t1, t0))
        t0 = time.ticks_us()  # the bookkeeping above left out
    if best is None:
        best = took
    else:
        for i in range(min(len(best), len(took))):
            if took[i] < best[i]:
                best[i] = took[i]
print(max(best), sum(best), len(best))
