# Runs inside the MicroPython unix port for tools/bench/bench_web.py.
#   micropython web_heap.py ROOT SITE_PACKAGES MODULES
# The web interface's heap beside a manager core of MODULES modules (10 strings): the
# core is built first, then microdot and manager_fw/web are imported, the app made, an
# admin and 8 sessions created, the board's link (status streamed one string at a
# time) published and 200 events offered (the board keeps 40).  Prints "core_kb web_kb
# web_code_kb snapshot_bytes largest_piece": web_kb is everything the web part holds
# after a collection; web_code_kb the part of it that came with the imports (bytecode,
# functions, the page text), which a frozen firmware image keeps in flash instead.
import gc
import sys

sys.path[:0] = [sys.argv[1], sys.argv[2]]
n = int(sys.argv[3])

from manager_fw import config  # noqa: E402
from manager_fw.core import ManagerCore  # noqa: E402


class Events:
    def append(self, *a):
        pass


per = n // 10
cfg = config.parse_config({"strings": [{"modules": per} for _ in range(10)],
                           "ri": {"enabled": False}, "runaway": {"enabled": False}})  # fmt: skip
gc.collect()
m0 = gc.mem_alloc()
core = ManagerCore(cfg, None, None, 189302400, event_log=Events())
for i in range(core.layout.module_count):  # every module answered: full-size values
    core.poller.state[core.layout.addresses[i]] = 1
    core.voltage_uv[i] = 13620123
    core.temp_mc[i] = 22512
    core.ri_nohm[i] = 5123456
    core.balance_pct[i] = 42
gc.collect()
m1 = gc.mem_alloc()

import microdot  # noqa: E402, F401

from manager_fw.web import app as webapp  # noqa: E402
from manager_fw.web import auth as au  # noqa: E402
from manager_fw.web import link as lk  # noqa: E402

gc.collect()
m2 = gc.mem_alloc()


class Files:
    def __init__(self):
        self.f = {}

    def read(self, p):
        return self.f.get(p)

    def write(self, p, t):
        self.f[p] = t

    def rename(self, a, b):
        self.f[b] = self.f.pop(a)


auth = au.Auth(Files(), iterations=2)
auth.create_first_admin(auth.setup_code, "admin", "the password 1", "ip", 0)
for k in range(8):
    auth.login("admin", "the password 1", "ip", k)
link = lk.WebLink(board=True)  # the board's way: the status streamed string by string
app = webapp.make_app(link, auth, lambda: 0, board_hash=True)
link.publish(core, 189302400)
for k in range(200):
    text = "module %d: voltage high warning (was normal) at 13.620 V" % k
    link.add_event("0d 00:00:%02d" % (k % 60), 3, "%d" % k, 0, text)
gc.collect()
m3 = gc.mem_alloc()
biggest = 0
for piece in link.chunks():  # one status request: its largest piece is what it adds
    biggest = max(biggest, len(piece))
core_kb, web_kb, code_kb = (m1 - m0) / 1024, (m3 - m1) / 1024, (m2 - m1) / 1024
print("%.1f %.1f %.1f %d %d" % (core_kb, web_kb, code_kb, len(link.latest()), biggest))
