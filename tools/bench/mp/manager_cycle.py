# Runs inside the MicroPython unix port for tools/bench/bench_manager.py (under callgrind):
# the manager core's own work for N measurement cycles of 600 modules in 10 strings, with
# no bus simulation in the count: the MEAS replies are encoded once beforehand and fed to
# the bus master as they would arrive; then core.step processes the cycle.
#
#   micropython manager_cycle.py MPY_DIR N
#
# N = 0 does the set-up only: callgrind's count for N cycles minus the count for 0,
# divided by N, is the instructions one cycle costs the core.
import sys

sys.path[:] = [sys.argv[1]]
cycles = int(sys.argv[2])

from manager_fw import config  # noqa: E402
from manager_fw.core import ManagerCore  # noqa: E402
from shared import protocol as p  # noqa: E402
from shared.compat import TICKS_MAX, ticks_diff  # noqa: E402

START_S = 200000000
SEQ = 7
cfg = config.simple_config([60] * 10, cycle_period_ms=0)
core = ManagerCore(cfg, None, None, START_S, site_key=b"StringCare-test!")
master = core.master
for i in range(cfg.layout.module_count):  # the census found every module
    core.census[i] = 1
    core.hw_rev[i] = 1
    core.variant[i] = 3
core._start_running(START_S)

replies = []
for a in range(1, 601):
    buf = bytearray(16)
    p.encode_meas(buf, p.ADDR_MANAGER, a, p.CMD_POLL_GROUP | p.REPLY, SEQ,
                  13600000 + (a % 40) * 1000, 22000 + (a % 150) * 20, a % 30, 0)  # fmt: skip
    replies.append(bytes(buf))

now_us = 0


def one_cycle():
    global now_us
    done = core.poller.cycle + 1
    while core.poller.cycle < done:
        t = now_us & TICKS_MAX
        n = master.step(t)
        if n:
            now_us += p.wire_us(n, master.baud)
            if master.tx[6] == p.CMD_POLL_GROUP:
                first = master.tx[8] | (master.tx[9] << 8)
                master.seq = SEQ  # the replies were encoded with this sequence number
                for a in range(first, first + master.tx[10]):
                    master.receive(replies[a - 1], now_us & TICKS_MAX)
                master.line_idle(now_us & TICKS_MAX)
            continue
        if master.waiting:
            now_us += max(1, ticks_diff(master.deadline_us, t))
        else:
            now_us += max(1, ticks_diff(master.free_at_us, t))
    core.step((now_us // 1000) & TICKS_MAX, START_S + now_us // 1000000)


one_cycle()  # the first cycle fills the tables; not counted either way
for _ in range(cycles):
    one_cycle()
assert core.cycles == cycles + 1 and core.fresh[599] == 1
