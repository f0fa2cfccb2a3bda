# A simulated TI ADS1219 as an I2C target (the register protocol of its data sheet,
# SBAS924A 8.5.3: RESET, START/SYNC, WREG, RREG of the status register, RDATA), for the
# tests of module_fw/vadc.py and of the module loop with that converter.
from shared import frontend as fe


class SimAds1219:
    """An ADS1219 as its I2C target: commands, the configuration register, DRDY and
    the conversion result.  `convert(code)` makes a new result ready."""

    def __init__(self):
        self.config = 0xFF
        self.started = False
        self.resets = 0
        self.code = 0
        self.drdy = False
        self._pending = 0  # what the next read returns: 0 none, 1 status, 2 data
        self.fail_next = False

    def convert(self, code):
        self.code = code & 0xFFFFFF
        self.drdy = True

    def writeto(self, addr, buf):
        assert addr == fe.ADS1219_ADDR
        if self.fail_next:
            self.fail_next = False
            raise OSError(5)  # EIO: a disturbed bus
        cmd = buf[0]
        if cmd == fe.ADS1219_CMD_RESET:
            self.resets += 1
            self.config = 0
            self.started = False
        elif cmd == fe.ADS1219_CMD_START:
            self.started = True
        elif cmd == fe.ADS1219_CMD_WREG:
            self.config = buf[1]
        elif cmd == fe.ADS1219_CMD_RREG_STATUS:
            self._pending = 1
        elif cmd == fe.ADS1219_CMD_RDATA:
            self._pending = 2
        else:
            raise AssertionError("unknown command %r" % cmd)
        return len(buf)

    def readfrom_into(self, addr, buf):
        assert addr == fe.ADS1219_ADDR
        if self._pending == 1:
            buf[0] = fe.ADS1219_STATUS_DRDY if self.drdy else 0
        elif self._pending == 2:
            buf[0] = (self.code >> 16) & 0xFF
            buf[1] = (self.code >> 8) & 0xFF
            buf[2] = self.code & 0xFF
            self.drdy = False
        else:
            raise AssertionError("read without a command")
        self._pending = 0
