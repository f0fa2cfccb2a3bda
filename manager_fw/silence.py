# System alarm for modules that stop answering (SPEC §3).
#
# A module counts as silent from its last good answer.  The system alarm for it is
# raised once it has been silent for `delay_s` (default 4 min), and the alarm contact
# follows `contact_delay_s` (default 90 s) after the first such alarm.  A single lost
# frame, or a few, never alarms: the next cycle's answer clears the silence.

from array import array

from manager_fw import poller as pl


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
