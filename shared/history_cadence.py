# When the manager records a history snapshot, and the few history values the manager
# core needs without loading the history codec (shared/history.py, which imports them
# from here: this is their one home).
#
# SPEC §3: a snapshot every 20 min in float charge, far more often during and after a
# discharge; at once on a change of mode.

from shared.compat import const

# why/how often the snapshot was taken (the manager core decides)
MODE_FLOAT = const(0)
MODE_DISCHARGE = const(1)
MODE_RECOVERY = const(2)  # the hours after a discharge (recharge, thermal watch)
MODE_BOOST = const(3)
MODE_NAMES = ("float", "discharge", "recovery", "boost")

INTERVAL_FLOAT_S = const(1200)
INTERVAL_DISCHARGE_S = const(10)
INTERVAL_RECOVERY_S = const(60)
INTERVAL_BOOST_S = const(300)
RECOVERY_DURATION_S = const(12 * 3600)  # SPEC: watch temperature 12 h after a discharge

# module state code, 4 bits: low 2 bits the level (0 normal, 1 warning, 2 alarm),
# bit 2 set when the module did not answer (values repeat the last known ones)
STATE_NORMAL = const(0)
STATE_WARNING = const(1)
STATE_ALARM = const(2)
STATE_SILENT = const(4)

CURRENT_NONE = const(-(1 << 23))  # no current reading (no sensor, or it is lost)


def record_interval_s(mode):
    """Seconds between two snapshots in this mode."""
    if mode == MODE_DISCHARGE:
        return INTERVAL_DISCHARGE_S
    if mode == MODE_RECOVERY:
        return INTERVAL_RECOVERY_S
    if mode == MODE_BOOST:
        return INTERVAL_BOOST_S
    return INTERVAL_FLOAT_S


class HistoryCadence:
    """When the next snapshot is due: on a change of mode at once, else by interval."""

    def __init__(self):
        self.last_s = -1
        self.last_mode = -1

    def due(self, now_s, mode):
        last = self.last_s
        if last < 0 or mode != self.last_mode or now_s < last:
            return True
        return now_s - last >= record_interval_s(mode)

    def recorded(self, now_s, mode):
        self.last_s = now_s
        self.last_mode = mode
