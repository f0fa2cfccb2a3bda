# Runs inside the MicroPython unix port for tools/bench/bench_deploy.py, with the
# unix_module bundle's files as the "flash" (cwd holds b/<id>/, as on a board).
#   micropython bundle_verify.py FOLDER WHAT N [time]
# WHAT: check  - shared/fwstore.check(FOLDER): the manifest's Ed25519 signature and
#                the SHA-256 of every file (what a board runs at install)
#       sig    - only the Ed25519 verify of the manifest signature
#       none   - imports only (the callgrind baseline)
# With "time": prints the minimum over N runs in µs (noise only ever adds time).
import sys
import time

folder = sys.argv[1]
what = sys.argv[2]
n = int(sys.argv[3])
timed = len(sys.argv) > 4
sys.path.insert(0, folder)  # the bundle's own .mpy, as the board imports them

from shared import ed25519, fwstore  # noqa: E402

with open(folder + "/MANIFEST", "rb") as f:
    manifest = f.read()
with open(folder + "/MANIFEST.sig", "rb") as f:
    pub, sig = fwstore.parse_signature(f.read())
best = 0
for _ in range(n):
    t0 = time.ticks_us()
    if what == "check":
        why, _sha = fwstore.check(folder, [])
        assert why is None, why
    elif what == "sig":
        assert ed25519.verify(pub, fwstore.signed_message(manifest), sig)
    dt = time.ticks_diff(time.ticks_us(), t0)
    if best == 0 or dt < best:
        best = dt
if timed:
    print(best)
