# `stringcare manager` leaves on SIGTERM, SIGHUP and SIGINT (Ctrl-C) by raising Stopped
# from the signal handler; the handler also notes the signal, because an exception a
# handler raises is lost when the signal lands while a __del__ runs (the loop then
# stops at its next turn: tools/stringcare/commands/manager.py).
import os
import signal

import pytest

from stringcare.commands import manager


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_a_signal_landing_in_a_del_is_not_lost():
    class Dropped:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)  # the handler runs inside __del__

    old = signal.signal(signal.SIGINT, manager._stop_on_signal)
    del manager._signalled[:]
    try:
        Dropped()  # garbage at once: __del__ runs, its Stopped is "ignored"
        for _ in range(1000):  # the handler runs at the next bytecode boundary
            if manager._signalled:
                break
        assert manager._signalled == [signal.SIGINT]
    finally:
        signal.signal(signal.SIGINT, old)
        del manager._signalled[:]
