# System alarm for modules that stop answering (SPEC §3).
#
# A module counts as silent from its last good answer.  The system alarm for it is
# raised once it has been silent for `delay_s` (default 4 min), and the alarm contact
# follows `contact_delay_s` (default 90 s) after the first such alarm.  A single lost
# frame, or a few, never alarms: the next cycle's answer clears the silence.
#
# This file is the one home of "silent module": the alarm (SilenceWatch), what the
# operator is shown (shown_answering: status page, web, Modbus, MQTT) and the history's
# silent state (manager_fw/cycle.py set_levels marks a module that did not answer the
# cycle).

from array import array

from manager_fw import poller as pl
from shared.compat import const

# What the operator sees: a module that missed fewer than this many polls in a row, or
# has been silent for less than SHOWN_SILENT_AFTER_S, still shows as answering (its
# readings are that fresh), so one reply lost to a noisy cable - or, on a small site
# polled continuously (a cycle every ~10 ms), a module busy for 30 ms - does not flip
# the status page, Modbus and MQTT to "silent" and back.  The silent-module alarm has
# its own delay (delay_s).
SHOWN_SILENT_AFTER = const(3)
SHOWN_SILENT_AFTER_S = const(3)


class SilenceWatch:
    def __init__(self, addresses, n_max: int, delay_s: int = 240, contact_delay_s: int = 90):
        self.addresses = addresses  # configured module addresses
        self.delay_s = delay_s
        self.contact_delay_s = contact_delay_s
        # -1: never answered; 4-byte items from bytes (no temporary list of n_max ints)
        self.last_ok_s = array("i", b"\xff\xff\xff\xff" * (n_max + 1))
        self.alarm = bytearray(n_max + 1)
        self.started_s = -1
        self.system_alarm_since_s = -1
        self.raised: list = []  # addresses whose alarm was raised by the last update
        self.cleared: list = []  # addresses that answered again after an alarm

    def update(self, poll: pl.Poller, now_s: int) -> None:
        if self.started_s < 0:
            self.started_s = now_s
        raised = self.raised
        cleared = self.cleared
        if raised:  # a slice object is an allocation: only when there is something
            del raised[:]
        if cleared:  # a slice object is an allocation: only when there is something
            del cleared[:]
        for a in self.addresses:
            st = poll.state[a]
            if st == pl.ST_OK or st == pl.ST_IMPLAUSIBLE:  # it answers (implausible: a warning)
                self.last_ok_s[a] = now_s
                if self.alarm[a]:
                    self.alarm[a] = 0
                    cleared.append(a)
                continue
            if st == pl.ST_NOT_POLLED:
                continue
            since = self.last_ok_s[a]
            if since < 0:
                since = self.started_s  # never answered: silent since the manager started
            if not self.alarm[a] and now_s - since >= self.delay_s:
                self.alarm[a] = 1
                raised.append(a)
        if self.any_alarm():
            if self.system_alarm_since_s < 0:
                self.system_alarm_since_s = now_s
        else:
            self.system_alarm_since_s = -1

    def any_alarm(self) -> bool:
        for a in self.addresses:
            if self.alarm[a]:
                return True
        return False

    def silent_s(self, a: int, now_s: int) -> int:
        since = self.last_ok_s[a]
        if since < 0:
            since = self.started_s
        return now_s - since

    def contact(self, now_s: int) -> bool:
        """The alarm contact (relay) for silent modules: after the further delay."""
        return (
            self.system_alarm_since_s >= 0
            and now_s - self.system_alarm_since_s >= self.contact_delay_s
        )

    def shown_answering(self, poll: pl.Poller, a: int, now_s: int) -> bool:
        """Answering as the operator sees it: the last poll, or one of the last
        SHOWN_SILENT_AFTER, or one in the last SHOWN_SILENT_AFTER_S got a reply."""
        st = poll.state[a]
        if st == pl.ST_OK:
            return True
        if st != pl.ST_SILENT:
            return False
        if poll.misses[a] < SHOWN_SILENT_AFTER:
            return True
        return self.silent_s(a, now_s) < SHOWN_SILENT_AFTER_S

    def shown_silent_s(self, poll: pl.Poller, a: int, now_s: int) -> int:
        """Seconds since the module last answered (0 while it answers)."""
        if poll.state[a] == pl.ST_OK:
            return 0
        return self.silent_s(a, now_s)
