# Runs inside the MicroPython unix port for tools/bench/bench_web.py.
#   micropython web_hash.py ROOT ITERATIONS [time]
# One login's password hash (PBKDF2-HMAC-SHA256, manager_fw/web/auth.py, the stepped
# pure-Python one a board runs).  With "time": prints the minimum over 3 repeats in ms.
# Without: just does it once (callgrind counts the instructions; 1 iteration = baseline).
import sys
import time

sys.path[:0] = [sys.argv[1]]
n = int(sys.argv[2])
timed = len(sys.argv) > 3

from manager_fw.web import auth  # noqa: E402


def login():
    for _ in auth.pbkdf2_steps(b"correct horse battery", b"0123456789abcdef", n):
        pass


if timed:
    best = None
    for _ in range(3):
        t0 = time.ticks_us()
        login()
        dt = time.ticks_diff(time.ticks_us(), t0)
        best = dt if best is None or dt < best else best
    print("%.1f" % (best / 1000))
else:
    login()
