# Runs inside the MicroPython unix port for host_tests/host/test_web_micropython.py:
#   micropython mp_web_board.py ROOT SITE_PACKAGES PORT
# The web interface as a Pico W manager would run it: one asyncio loop, the manager's
# loop a task that goes first (every 5 ms: the web link's commands and snapshot), the
# Microdot server a second task, the password hash in steps that yield.  A small manager
# core (2 strings of 2, no bus) stands in for the board's.  /test/turns says how often
# the manager's loop ran and the longest gap between two of its turns (ms).
import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]
port = int(sys.argv[3])

import asyncio  # noqa: E402
import time  # noqa: E402

from manager_fw import config  # noqa: E402
from manager_fw.core import ManagerCore  # noqa: E402
from manager_fw.web import app as webapp  # noqa: E402
from manager_fw.web import auth as au  # noqa: E402
from manager_fw.web import link as lk  # noqa: E402

START_S = 189302400


class Files:
    def __init__(self):
        self.f = {}

    def read(self, p):
        return self.f.get(p)

    def write(self, p, t):
        self.f[p] = t

    def rename(self, a, b):
        self.f[b] = self.f.pop(a)


class Events:
    def __init__(self):
        self.items = []

    def append(self, time_s, code, module=0xFFFF, string=0xFF, value=0, arg=0, extra=0):
        self.items.append((code, arg, extra))


events = Events()
cfg = config.parse_config({"strings": [{"modules": 2}, {"modules": 2}],
                           "ri": {"enabled": False}, "runaway": {"enabled": False}})  # fmt: skip
core = ManagerCore(cfg, None, None, START_S, event_log=events)
auth = au.Auth(Files(), iterations=au.ITERATIONS["unix"])
link = lk.WebLink(board=True)
app = webapp.make_app(link, auth, time.time, board_hash=True)
loop_state = {"turns": 0, "gap_ms": 0}


@app.route("/test/turns")
async def turns(request):
    return "%d %d %d" % (loop_state["turns"], loop_state["gap_ms"], len(events.items))


@app.route("/test/reset_gap")
async def reset_gap(request):
    loop_state["gap_ms"] = 0
    return "ok"


async def manager_loop():
    last = time.ticks_ms()
    while True:
        now = time.ticks_ms()
        gap = time.ticks_diff(now, last)
        if gap > loop_state["gap_ms"]:
            loop_state["gap_ms"] = gap
        last = now
        loop_state["turns"] += 1
        now_s = START_S + time.ticks_ms() // 1000
        link.apply(core, now_s)
        link.publish(core, now_s)
        await asyncio.sleep_ms(5)


async def main():
    asyncio.create_task(manager_loop())  # the manager's loop first
    print("setup code: %s" % auth.setup_code)
    await app.start_server("127.0.0.1", port)


asyncio.run(main())
