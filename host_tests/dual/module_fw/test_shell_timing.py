# module_fw/main.py Shell: the loop keeps POLL_GROUP slots while a measurement frame's
# work takes milliseconds (a 1024-sample frame sum on a Cortex-M0+).  The board's time
# is a fake microsecond clock: each HAL clock read costs LOOP_TICK_US, and each
# measurement frame FRAME_WORK_US, so a reply due while a frame is being worked on
# shows up late unless the loop puts the work off.
from array import array

from module_fw import store as sto
from module_fw.core import ModuleCore
from module_fw.main import Shell
from shared import frontend as fe
from shared import protocol as p

UID = b"\x01\x02\x03\x04\x05\x06\x07\x08"
V12 = 3
BAUD = 115200
ADDRESS = 70
LOOP_TICK_US = 20
FRAME_WORK_US = 5000
FRAME_PERIOD_US = 100000


class FakeBoard:
    def __init__(self):
        self.uid = UID
        self.variant_id = V12
        self.adc_kind = fe.ADC_STM32G4
        self.hw_rev = 1
        self.baud = BAUD
        self.slots = sto.MemorySlots()
        seed = ModuleCore(UID, V12, fe.ADC_STM32G4, self.slots)
        seed.state.address = ADDRESS
        seed.store.save(seed.state)
        self.t = 0
        self.next_frame_us = FRAME_PERIOD_US
        self.voltage_buf = array("H", [2000] * fe.VOLTAGE_FRAME_SAMPLES)
        self.pending = None  # (arrival_us, request bytes)
        self.rx_end_us = 0
        self.tx_us = []

    def ticks_us(self):
        self.t += LOOP_TICK_US
        return self.t

    def ticks_diff_us(self, a, b):
        return a - b

    def bus_rx(self, buf):
        if self.pending is None or self.t < self.pending[0]:
            return 0
        data = self.pending[1]
        self.pending = None
        for k in range(len(data)):
            buf[k] = data[k]
        self.rx_end_us = self.t
        return len(data)

    def bus_tx(self, buf, n):
        self.tx_us.append(self.t)

    def voltage_start(self):
        pass

    def voltage_ready(self):
        if self.t < self.next_frame_us:
            return False
        self.next_frame_us += FRAME_PERIOD_US
        self.t += FRAME_WORK_US  # the frame's work, as the shell's sum takes it on a board
        return True

    def temp_read(self, int_buf, probe_buf):
        for k in range(fe.TEMP_FRAME_SAMPLES):
            int_buf[k] = 1000
        return False

    def button(self):
        return False

    def set_led(self, bits):
        pass

    def set_duty(self, permille):
        pass

    def feed_watchdog(self):
        pass

    def sleep_until_bus(self, ms):
        self.t += ms * 1000


def slot_start_us(index):
    tc_ns = p.char_ns(BAUD)
    lead_ns = max(p.LEAD_MIN_US * 1000, 4 * tc_ns)
    return (lead_ns + index * 18 * tc_ns) // 1000


def run_until(shell, board, t_us):
    while board.t < t_us:
        shell.step()


def lateness_when_due_inside_a_frame(index, into_frame_us):
    """Send a POLL_GROUP whose reply for slot `index` falls due `into_frame_us` after a
    frame's work begins; return how late the reply started (µs) against the grid."""
    board = FakeBoard()
    shell = Shell(board)
    run_until(shell, board, 3 * FRAME_PERIOD_US + 5 * FRAME_WORK_US)  # frames seen
    frame_start = board.next_frame_us + FRAME_PERIOD_US
    arrival = frame_start + into_frame_us - slot_start_us(index)
    first = ADDRESS - index
    req = p.encode_bytes(
        p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, 9, bytes([first, 0, 64])
    )
    board.pending = (arrival, req)
    run_until(shell, board, frame_start + 3 * FRAME_PERIOD_US)
    assert len(board.tx_us) == 1, board.tx_us
    return board.tx_us[0] - board.rx_end_us - slot_start_us(index)


def test_a_slot_due_during_a_frame_is_kept():
    tc_us = p.char_ns(BAUD) // 1000
    for index in (0, 7, 63):
        for into in (0, 1000, 2500, FRAME_WORK_US - 100):
            late = lateness_when_due_inside_a_frame(index, into)
            assert -LOOP_TICK_US <= late < tc_us, (index, into, late)


def test_the_frames_go_on_around_the_replies():
    board = FakeBoard()
    shell = Shell(board)
    run_until(shell, board, 2 * FRAME_PERIOD_US + FRAME_WORK_US)
    frames = shell.frames
    # a group request every 150 ms for 3 s: no frame is lost, only put off
    t = board.t
    for k in range(20):
        first = ADDRESS - 63
        req = p.encode_bytes(
            p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, k + 1, bytes([first, 0, 64])
        )
        board.pending = (t + k * 150000, req)
        while board.pending is not None:
            shell.step()
    run_until(shell, board, t + 20 * 150000)
    assert len(board.tx_us) == 20
    assert shell.frames - frames >= 29, shell.frames - frames


class IdlingBoard(FakeBoard):
    """A board whose HAL has idle_until_bus (boards/unix_module: a host process gives
    its CPU back): the wait ends when bytes arrive, at the next frame, or after ms."""

    def __init__(self):
        FakeBoard.__init__(self)
        self.shell = None
        self.idle_calls = 0
        self.bad_idle = []  # (t, tx_len, idle_sent) of waits while something was due

    def idle_until_bus(self, ms):
        shell = self.shell
        self.idle_calls += 1
        if shell.tx_len or not shell.idle_sent:
            self.bad_idle.append((self.t, shell.tx_len, shell.idle_sent))
        end = self.t + ms * 1000
        if self.next_frame_us < end:
            end = self.next_frame_us
        if self.pending is not None and self.pending[0] < end:
            end = self.pending[0]
        if end > self.t:
            self.t = end


def test_the_idle_wait_keeps_the_slots_and_never_holds_a_reply():
    tc_us = p.char_ns(BAUD) // 1000
    for index in (0, 63):
        board = IdlingBoard()
        shell = Shell(board)
        board.shell = shell
        run_until(shell, board, 3 * FRAME_PERIOD_US + 5 * FRAME_WORK_US)
        idle_before = board.idle_calls
        assert idle_before > 0  # the quiet line was waited on, not polled flat out
        arrival = board.t + 31000  # in the middle of an idle wait
        first = ADDRESS - index
        req = p.encode_bytes(
            p.ADDR_BROADCAST, p.ADDR_MANAGER, p.CMD_POLL_GROUP, 5, bytes([first, 0, 64])
        )
        board.pending = (arrival, req)
        run_until(shell, board, arrival + 2 * FRAME_PERIOD_US)
        assert len(board.tx_us) == 1, board.tx_us
        assert board.rx_end_us - arrival <= LOOP_TICK_US * 4  # the byte ended the wait
        late = board.tx_us[0] - board.rx_end_us - slot_start_us(index)
        assert -LOOP_TICK_US <= late < tc_us, (index, late)
        assert not board.bad_idle, board.bad_idle
        assert shell.frames >= 5  # the frames went on
