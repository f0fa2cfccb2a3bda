# module_fw/vadc: the ADS1219 block-voltage converter's driver, against a simulated
# ADS1219 on the I2C bus (the register protocol of its data sheet, SBAS924A 8.5.3:
# RESET, START/SYNC, WREG, RREG of the status register, RDATA).
from ads1219sim import SimAds1219
from dualtest import heap_locked

from module_fw.vadc import Ads1219Frames
from shared import frontend as fe


def test_start_configures_and_frames_sum_two_conversions():
    dev = SimAds1219()
    frames = Ads1219Frames(dev)
    frames.start()
    assert dev.resets == 1 and dev.started
    # AIN0-AIN1, gain 1, 20 SPS, continuous, external reference
    assert dev.config == 0x03 == fe.ADS1219_CONFIG
    assert not frames.poll()  # nothing converted yet
    dev.convert(0x400000)  # half the reference
    assert not frames.poll()  # first of the frame's two
    assert not frames.poll()  # no new conversion: not counted twice
    dev.convert(0x400008)
    assert frames.poll()
    assert frames.total == (0x400000 >> 3) + (0x400008 >> 3)
    assert frames.frames == 1
    dev.convert(-16)  # a negative reading (offset near zero input)
    assert not frames.poll()
    dev.convert(-8)
    assert frames.poll() and frames.total == -3


def test_an_i2c_error_restarts_the_frame():
    dev = SimAds1219()
    frames = Ads1219Frames(dev)
    frames.start()
    dev.convert(1000 << 3)
    assert not frames.poll()
    dev.fail_next = True
    assert not frames.poll()
    assert frames.errors == 1
    # the half frame was dropped: two more conversions make the next frame
    dev.convert(2000 << 3)
    assert not frames.poll()
    dev.convert(2000 << 3)
    assert frames.poll() and frames.total == 4000


def test_poll_allocates_nothing():
    dev = SimAds1219()
    frames = Ads1219Frames(dev)
    frames.start()
    assert heap_locked(frames.poll) is False
    dev.convert(0x123456)
    assert heap_locked(frames.poll) is False
    dev.convert(0x123456)
    assert heap_locked(frames.poll) is True
    assert frames.total == 2 * (0x123456 >> 3)
