# One module core in its own MicroPython process, driven by the simulator
# (stringcare sim --micropython; tools/stringcare/sim/mpmodules.py) over stdin/stdout,
# one command line in, one answer line out.  The firmware is the same ModuleCore
# the boards run; only its inputs come from the simulated string instead of pins.
#
#   S <hex>                        a store record for slot 0 (commissioning)
#   I <uid hex> <variant> <adc> <frame ms>   build the core (loads the store) -> OK
#   B <ms> <hex>                   bus bytes                             -> R ...
#   D <ms>                         the line went idle                    -> R ...
#   F <ms> <int_x2> <probe_x2|-> <volt_x2> <button>                      -> T ...
#   P <ms>                         a capture to run?                     -> P ... | N
#   V <hex v> <hex i>              capture samples (16-bit LE)           -> OK
#   E <ms>                         capture done                          -> P ... | N
#   Q                              quit
#
# Answers:
#   R <len> <delay_us> <hex>       a reply to send (len 0: none)
#   T <duty> <led> <address> <addressing> <ri_busy>
#   P <method> <gain_range> <ri_gain_ppm>   the RiPlan to synthesise
import sys
from array import array
from binascii import hexlify, unhexlify

from module_fw import store as sto
from module_fw.core import ModuleCore

core: ModuleCore = None  # type: ignore[assignment]  # built by the I command
slots = sto.MemorySlots()


def out(text):
    sys.stdout.write(text)
    sys.stdout.write("\n")


def reply(n):
    if n:
        out("R %d %d %s" % (n, core.tx_delay_us, hexlify(bytes(core.tx[:n])).decode()))
    else:
        out("R 0 0 -")


def plan_line(plan):
    if plan is None:
        out("N")
    else:
        out("P %d %d %d" % (plan.method, plan.gain_range, plan.ri_gain_ppm))


def words(data):
    raw = unhexlify(data)
    a = array("H", [0] * (len(raw) // 2))
    for i in range(len(a)):
        a[i] = raw[2 * i] | (raw[2 * i + 1] << 8)
    return a


def main():
    global core
    while True:
        line = sys.stdin.readline()
        if not line:
            return
        parts = line.split()
        if not parts:
            continue
        cmd = parts[0]
        if cmd == "Q":
            return
        if cmd == "S":
            slots.data[0] = unhexlify(parts[1])
            out("OK")
        elif cmd == "I":
            core = ModuleCore(
                unhexlify(parts[1]), int(parts[2]), int(parts[3]), slots, frame_ms=int(parts[4]),
                vadc=int(parts[5]) if len(parts) > 5 else 0,
            )  # fmt: skip
            out("OK")
        elif cmd == "B":
            data = unhexlify(parts[2])
            reply(core.bus_bytes(data, len(data), int(parts[1])))
        elif cmd == "D":
            reply(core.bus_idle(int(parts[1])))
        elif cmd == "F":
            now = int(parts[1])
            probe = None if parts[3] == "-" else int(parts[3])
            core.temperature_frame(int(parts[2]), probe, now)
            core.voltage_frame(int(parts[4]), now)
            core.tick(now, parts[5] == "1")
            s = core.state
            out(
                "T %d %d %d %d %d"
                % (core.duty, core.led, s.address, 1 if s.addressing else 0, 1 if s.ri_busy else 0)
            )
        elif cmd == "P":
            plan_line(core.ri_pending(int(parts[1])))
        elif cmd == "V":
            v = words(parts[1])
            i = words(parts[2])
            core.ri_feed(v, i, len(v))
            out("OK")
        elif cmd == "E":
            plan_line(core.ri_done(int(parts[1])))
        else:
            out("ERR unknown command %s" % cmd)


main()
