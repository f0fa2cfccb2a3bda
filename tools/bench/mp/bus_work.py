# Runs inside the MicroPython unix port for tools/bench/bench_bus.py.
#   micropython bus_work.py ROOT WHAT N [time]
# WHAT: decode  - manager: feed one MEAS reply into a Deframer, poll, read its fields
#       module  - module: feed a POLL_GROUP request, poll, handle it (encode the reply)
#       mac     - module: verify the MAC and counter of an authenticated SET_TARGET
# With "time": prints the minimum over 7 repeats of the µs per item (noise only ever
# adds time, so the minimum is the most repeatable wall-clock figure).  Without: just
# does the work N times (callgrind counts the instructions; N=0 is the baseline).
import sys
import time

sys.path[:0] = [sys.argv[1]]
what = sys.argv[2]
n = int(sys.argv[3])
timed = len(sys.argv) > 4

from array import array  # noqa: E402

from module_fw.responder import Responder  # noqa: E402
from module_fw.state import ModuleState  # noqa: E402
from shared import auth  # noqa: E402
from shared import protocol as p  # noqa: E402
from shared import protocol_layouts as lay  # noqa: E402

KEY = b"StringCare-test!"  # the published test key (docs/protocol-vectors.json)

buf = bytearray(p.FRAME_MAX)
out = array("l", [0, 0, 0, 0])
d = p.Deframer()
if what == "decode":
    size = p.encode_meas(buf, p.ADDR_MANAGER, 42, 0x83, 5, 13600010, 25200, 40, 1)
    frame = bytes(buf[:size])
elif what == "mac":
    frame = lay.encode_request(p.ADDR_BROADCAST, p.CMD_SET_TARGET, 1, {
        "first": 1, "last": 64, "target_10uv": 1360000, "flags": 1, "timeout_s": 30},
        auth.Signer(KEY))  # fmt: skip
    mac = auth.Mac(KEY)
    d.feed(frame, 0, len(frame))
    target = d.poll()
else:
    frame = p.encode_bytes(p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, 1, b"\x01\x00\x40")
    state = ModuleState(b"12345678", 3)
    state.address = 1
    responder = Responder(state)


def work(count):
    if what == "mac":
        for _ in range(count):
            if auth.check_request(mac, target, 0, 0) != 1:
                raise SystemExit("the MAC did not verify")
        return
    for _ in range(count):
        d.feed(frame, 0, len(frame))
        f = d.poll()
        if what == "decode":
            out[0] = p.meas_voltage_uv(f.buf, f.off)
            out[1] = p.meas_temp_mc(f.buf, f.off)
            out[2] = f.u8(4)
            out[3] = f.u8(5)
        else:
            responder.handle(f, 0)


if timed:
    best = -1
    for _ in range(7):
        t0 = time.ticks_us()
        work(n)
        dt = time.ticks_diff(time.ticks_us(), t0)
        if best < 0 or dt < best:
            best = dt
    print(best / n)
else:
    work(n)
