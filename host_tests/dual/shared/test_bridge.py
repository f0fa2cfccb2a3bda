# The converter's rules (shared/bridge.py): whole frames in one burst, other bytes
# after a quiet gap, and the REPL escape only after host silence.
from shared import bridge
from shared import protocol as p
from shared.compat import ticks_diff


def diff(a, b):
    return ticks_diff(a, b)


def test_a_frame_split_over_two_usb_packets_goes_out_whole():
    up = bridge.UsbToBus(diff)
    frame = p.encode_bytes(5, p.ADDR_MANAGER, p.CMD_READ_MEAS, 1)
    assert up.feed(frame[:4], 4, 100000) == bridge.FED
    assert up.ready(100100) == 0  # incomplete: keep waiting, never a gap inside a frame
    up.feed(frame[4:], len(frame) - 4, 100200)
    n = up.ready(100200)
    assert n == len(frame) and bytes(up.buf[:n]) == frame
    up.consume(n)
    assert up.fill == 0


def test_other_bytes_pass_unchanged_after_a_quiet_gap():
    up = bridge.UsbToBus(diff)
    data = bytes([0x00, 0x03, 0x04, 0x0D, 0xFF])
    up.feed(data, len(data), 1000)
    assert up.ready(1000 + bridge.FLUSH_QUIET_US - 1) == 0
    n = up.ready(1000 + bridge.FLUSH_QUIET_US)
    assert bytes(up.buf[:n]) == data


def test_cr_ctrl_c_after_silence_is_the_escape_but_not_inside_traffic():
    up = bridge.UsbToBus(diff)
    assert up.feed(b"\r\x03", 2, 5000000) == bridge.ESCAPE
    up = bridge.UsbToBus(diff)
    frame = p.encode_bytes(5, p.ADDR_MANAGER, p.CMD_READ_MEAS, 1)
    up.feed(frame, len(frame), 1000)
    up.consume(up.ready(1000))
    assert up.feed(b"\r\x03", 2, 2000) == bridge.FED  # 1 ms after a frame: data
    # split over two packets after silence
    up = bridge.UsbToBus(diff)
    assert up.feed(b"\r", 1, 9000000) == bridge.FED
    assert up.feed(b"\x03", 1, 9000100) == bridge.ESCAPE
    assert up.fill == 0
