# Runs inside the MicroPython unix port for tools/bench/bench_manager.py: the manager core
# (manager_fw/core.py) of a site, its bus bytes exchanged over stdin/stdout with the
# CPython process that simulates the modules on the virtual bus.
#
#   micropython -X heapsize=<192k + image> manager_core.py ROMFS_IMAGE SITE_JSON STATE_DIR [plain]
#
# The code runs from a ROMFS image (mpremote romfs build: shared/ and manager_fw/ as
# .mpy) mounted with vfs.VfsRom, so its bytecode executes in place as from a board's
# flash.  The unix port has no flash: the image is read into one heap block first, and
# the heap is given that much more than 192 KB; every figure below leaves it out.
#
# "plain": no gc.collect() after every message (the heap then fills and collects by
# itself, as on a board): used to find the smallest heap that runs the site.
#
# Lines in (virtual time in µs, frames in hex):
#   S <now_us>             time passes
#   R <now_us> <hex>       these bytes arrived at now_us, then the line went idle
#   Q                      quit: print the figures
# Lines out, after every S and R:
#   TX <hex>               send this frame now
#   WAIT <us>              nothing to send; ask again within <us> (-1: nothing planned)
# and for Q one line "F <json>" with the figures:
#   imports   live heap after importing the core (the code, as .mpy loaded into RAM)
#   built     live heap right after the core was built
#   peak      largest live heap seen after any message (gc.collect() first)
#   cycles    measurement cycles processed; cpu_us: core CPU time of each one
#   census_us virtual time when the core started polling
#   cycle_us  wire time of the last cycle (poller.last_cycle_us)
import gc
import os
import sys
import time

import vfs

image = bytearray(os.stat(sys.argv[1])[6])
with open(sys.argv[1], "rb") as _f:
    _f.readinto(image)
vfs.mount(vfs.VfsRom(image), "/rom")
sys.path[:] = ["/rom"]
site_json = sys.argv[2]
state_dir = sys.argv[3]
measure = sys.argv[4] != "plain"

gc.collect()
heap_empty = gc.mem_alloc()  # the interpreter and the image: the baseline of every figure

# A board parses its configuration at start-up and drops the parser afterwards.
from manager_fw import config as _config  # noqa: E402

with open(site_json) as _f:
    cfg = _config.config_from_text(_f.read())
_parser_modules = _config.PARSER_MODULES
del _config
import manager_fw  # noqa: E402

for _name in _parser_modules:
    sys.modules.pop("manager_fw." + _name, None)
    try:
        delattr(manager_fw, _name)
    except AttributeError:
        pass
gc.collect()

# Keep one large region free for the core's per-module tables while the code is loaded
# (loading leaves many small holes between the code objects; a board's main.py can do
# the same): a placeholder, dropped right before the core is built.
reserve = bytearray(int(sys.argv[5]) * 1024)

# what the core loads when it is built for this site, so that `imports` is all the code
import manager_fw.history_store  # noqa: E402, F401
import manager_fw.ri_schedule  # noqa: E402, F401
import manager_fw.runaway  # noqa: E402, F401
from manager_fw.blockdev import FileBlockDevice  # noqa: E402
from manager_fw.core import ManagerCore  # noqa: E402
from shared.compat import TICKS_MAX, ticks_diff  # noqa: E402

reserve = None
gc.collect()
heap_imports = gc.mem_alloc()

START_S = 200000000
history = FileBlockDevice(state_dir + "/history.bin", 1024 * 1024)
events = FileBlockDevice(state_dir + "/events.bin", 64 * 1024)
core = ManagerCore(cfg, history, events, START_S, site_key=b"StringCare-test!")
master = core.master
gc.collect()
heap_built = gc.mem_alloc()
peak = heap_built

cpu_us = []  # per processed cycle
acc_us = 0
cycles_seen = 0
census_us = -1
last_step_us = -1000000
STEP_EVERY_US = 10000  # the shell calls core.step every 10 ms, and after every cycle


def wake_us(now):
    t = now & TICKS_MAX
    if master.waiting:
        d = ticks_diff(master.deadline_us, t)
        return d if d > 0 else 0
    d = ticks_diff(master.free_at_us, t)
    if d > 0:
        return d
    if master.foreground is not None or master.service_count:
        return 100
    return -1


def act(now):
    """core.step when due, then the master; answer the CPython side."""
    global acc_us, cycles_seen, census_us, last_step_us
    t0 = time.ticks_us()
    if core._cycle_ready or now - last_step_us >= STEP_EVERY_US:
        core.step((now // 1000) & TICKS_MAX, START_S + now // 1000000)
        last_step_us = now
    core.persist(1)  # the storage turn of manager_fw/main.py: the queued records' writes
    n = master.step(now & TICKS_MAX)
    acc_us += time.ticks_diff(time.ticks_us(), t0)
    if core.cycles != cycles_seen:
        cycles_seen = core.cycles
        cpu_us.append(acc_us)
        acc_us = 0
    if census_us < 0 and core.mode == 2:
        census_us = now
        acc_us = 0
    if n:
        sys.stdout.write("TX " + master.tx[:n].hex() + "\n")
    else:
        sys.stdout.write("WAIT %d\n" % wake_us(now))


while True:
    line = sys.stdin.readline()
    if not line:
        break
    kind = line[0]
    if kind == "Q":
        break
    parts = line.split()
    now = int(parts[1])
    if kind == "R":
        data = bytes.fromhex(parts[2])
        t0 = time.ticks_us()
        at = now & TICKS_MAX
        master.receive(data, at)
        master.line_idle(at)
        acc_us += time.ticks_diff(time.ticks_us(), t0)
        data = None
    act(now)
    if measure:
        gc.collect()
        live = gc.mem_alloc()
        if live > peak:
            peak = live

print(
    "F {" + '"empty": %d, "imports": %d, "built": %d, "peak": %d, "cycles": %d, "census_us": %d, '
    '"cycle_us": %d, "mode": "%s", "refusal": "%s", "cpu_us": [%s]}'
    % (
        heap_empty,
        heap_imports,
        heap_built,
        peak,
        core.cycles,
        census_us,
        core.poller.last_cycle_us,
        core.mode_name(),
        core.refusal or "",
        ", ".join(str(x) for x in cpu_us),
    )
)
