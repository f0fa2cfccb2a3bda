# The manager core's bus jobs, one module each (manager_fw/bus.py BusJob):
#
#   wake.py      WakePreamble, SleepJob   foreground: wake the bus, put it to sleep
#   census.py    CensusJob                foreground: who is on the bus (start-up)
#   info.py      InfoJob                  service: INFO of a module found late
#   mark.py      MarkJob                  service: the level a module shows
#   current.py   CurrentJob               service: a string's current sensor
#   io.py        IoJob                    service: a relay/IO box (relays, UPS input)
#   ri.py        RiJob                    service: RI_START / RI_READ of one module
#
# A job reads and writes the core's arrays through the core it was given; the core
# (manager_fw/core.py) queues the service jobs and starts the foreground ones through
# its mode table (manager_fw/modes.py).

from manager_fw import bus as b


class CoreJob(b.BusJob):
    """A foreground job of the core; `done` once it has nothing more to send."""

    done = False
