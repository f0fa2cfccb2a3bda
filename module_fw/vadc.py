# The module's external block-voltage converter, a TI ADS1219 on I2C (board option
# "vadc": "ads1219", docs/frontend.md "External block-voltage converter").
#
#   frames = Ads1219Frames(i2c)      # i2c: machine.I2C (writeto, readfrom_into)
#   frames.start()                   # reset, configure, start continuous conversions
#   if frames.poll(): core.voltage_frame(frames.total, now_ms)
#
# poll() reads the status register; when a conversion is ready it reads it and adds
# it to the frame; after 2**ADS1219_FRAME_LOG2 conversions (100 ms at 20 SPS) the frame
# is complete: poll() returns True once and `total` holds its sum until the next one.
# No allocation per poll (buffers made here); an I2C error (OSError) is counted and the
# frame restarted, so a disturbed bus delays a frame and never corrupts one.
from shared import frontend as fe


class Ads1219Frames:
    def __init__(self, i2c, addr: int = fe.ADS1219_ADDR) -> None:
        self.i2c = i2c
        self.addr = addr
        self._cmd = bytearray(1)
        self._wreg = bytearray(2)
        self._rx = bytearray(3)
        self._acc = 0
        self._count = 0
        self.total = 0
        self.frames = 0
        self.errors = 0

    def _command(self, cmd: int) -> None:
        self._cmd[0] = cmd
        self.i2c.writeto(self.addr, self._cmd)

    def start(self) -> None:
        """Reset the converter, write its configuration, start converting."""
        self._command(fe.ADS1219_CMD_RESET)
        self._wreg[0] = fe.ADS1219_CMD_WREG
        self._wreg[1] = fe.ADS1219_CONFIG
        self.i2c.writeto(self.addr, self._wreg)
        self._command(fe.ADS1219_CMD_START)
        self._acc = 0
        self._count = 0

    def poll(self) -> bool:
        """Take a ready conversion; True when it completed a frame (`total`)."""
        try:
            self._command(fe.ADS1219_CMD_RREG_STATUS)
            self.i2c.readfrom_into(self.addr, self._cmd)
            if not self._cmd[0] & fe.ADS1219_STATUS_DRDY:
                return False
            self._command(fe.ADS1219_CMD_RDATA)
            self.i2c.readfrom_into(self.addr, self._rx)
        except OSError:
            self.errors += 1
            self._acc = 0
            self._count = 0
            return False
        self._acc += fe.ads1219_units(self._rx)
        self._count += 1
        if self._count < 1 << fe.ADS1219_FRAME_LOG2:
            return False
        self.total = self._acc
        self._acc = 0
        self._count = 0
        self.frames += 1
        return True
