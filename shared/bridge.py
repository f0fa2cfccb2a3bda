# The USB <-> RS-485 converter's logic (boards/rp2040_converter, boards/unix_converter),
# sans-I/O: what to put on the bus and when, and when the host asks for the REPL.
#
# Host -> bus.  USB delivers the host's bytes in packets of up to 64 bytes at moments
# the converter does not choose; the bus needs every frame as one unbroken burst (a
# receiver treats 2 idle characters inside a frame as its end).  So bytes are held
# until either a complete frame sits at the head of the buffer (SYNC, VERLEN, and
# 10 + LEN bytes) - it is sent at once, exactly that frame - or the USB side has been
# quiet for FLUSH_QUIET_US: then everything held is sent as it is.  Nothing is parsed
# beyond the length byte and nothing is changed: any byte sequence passes (binary safe).
#
# Bus -> host: bytes go to USB as they arrive (the shell does that; nothing to decide).
#
# The way back to the REPL (docs: boards/rp2040_converter/README.md).  The data channel
# has the keyboard interrupt disabled, so mpremote's Ctrl-C would be data.  A burst
# that starts with CR, Ctrl-C (0x0D 0x03: what mpremote sends first) after the host was
# quiet for ESCAPE_QUIET_US is the escape: it is not sent to the bus and feed() returns
# ESCAPE; the shell then leaves the bridge for the REPL.  StringCare host tools never
# begin a transmission with 0x0D (every frame begins with SYNC 0xA5).
#
# now_us values come from the port's ticks_us and wrap: every comparison goes through
# ticks_diff-like arithmetic supplied by the shell (diff_us).

from shared import protocol as p
from shared.compat import const

BUF_LEN = const(512)
FLUSH_QUIET_US = const(2000)
ESCAPE_QUIET_US = const(50000)

FED = const(0)
ESCAPE = const(1)


class UsbToBus:
    def __init__(self, diff_us) -> None:
        self.buf = bytearray(BUF_LEN)
        self.fill = 0
        self.diff_us = diff_us  # diff_us(a, b) = a - b on the shell's µs circle
        self.last_rx_us = 0
        self.quiet = True  # the host has been quiet for ESCAPE_QUIET_US
        self.bytes_in = 0
        self.bursts_out = 0
        self.overflows = 0
        self.cr_pending = False

    def feed(self, data, n: int, now_us: int) -> int:
        """Bytes from USB (data[:n]).  Returns ESCAPE when they are the REPL escape."""
        if n <= 0:
            return FED
        fresh = self.fill == 0 and (
            self.quiet or self.diff_us(now_us, self.last_rx_us) >= ESCAPE_QUIET_US
        )
        self.last_rx_us = now_us
        self.quiet = False
        if fresh and data[0] == 0x0D:
            if n >= 2 and data[1] == 0x03:
                return ESCAPE
            self.cr_pending = n == 1  # a lone CR: the next packet decides
        elif self.cr_pending and self.fill == 1 and data[0] == 0x03:
            self.cr_pending = False
            self.fill = 0
            return ESCAPE
        else:
            self.cr_pending = False
        room = BUF_LEN - self.fill
        if n > room:
            self.overflows += n - room
            n = room
        p.copy_bytes(self.buf, self.fill, data, 0, n)
        self.fill += n
        self.bytes_in += n
        return FED

    def ready(self, now_us: int) -> int:
        """How many bytes at the head of buf to put on the bus now (0: keep waiting)."""
        fill = self.fill
        if fill == 0:
            if not self.quiet and self.diff_us(now_us, self.last_rx_us) >= ESCAPE_QUIET_US:
                self.quiet = True
            return 0
        buf = self.buf
        if buf[0] == p.SYNC and fill >= 2:
            total = p.OVERHEAD + (buf[1] & 0x3F)
            if fill >= total:
                return total
        if self.diff_us(now_us, self.last_rx_us) >= FLUSH_QUIET_US or fill == BUF_LEN:
            if buf[0] == p.SYNC and fill >= 2:
                total = p.OVERHEAD + (buf[1] & 0x3F)
                if total < fill:
                    return total
            return fill
        return 0

    def consume(self, n: int) -> None:
        """The shell sent buf[:n]."""
        keep = self.fill - n
        if keep > 0:
            p.copy_bytes(self.buf, 0, self.buf, n, keep)
            self.fill = keep
        else:
            self.fill = 0
        self.cr_pending = False
        self.bursts_out += 1


def run(io, baud: int) -> None:
    """The converter's loop: USB <-> bus until the REPL escape.  `io` is the board's
    shell (boards/rp2040_converter/hal.py): usb_read(buf) -> n, usb_write(buf, n),
    bus_read(buf) -> n, bus_tx(buf, n), ticks_us(), ticks_diff_us(a, b), led(on),
    data_mode(on) (keyboard interrupt off / raw terminal), idle()."""
    up = UsbToBus(io.ticks_diff_us)
    usb_buf = bytearray(64)
    bus_buf = bytearray(64)
    activity_us = io.ticks_us()
    io.data_mode(True)
    try:
        while True:
            now = io.ticks_us()
            n = io.usb_read(usb_buf)
            if n:
                if up.feed(usb_buf, n, now) == ESCAPE:
                    break
            k = up.ready(now)
            if k:
                io.bus_tx(up.buf, k)
                up.consume(k)
                activity_us = now
            m = io.bus_read(bus_buf)
            if m:
                io.usb_write(bus_buf, m)
                activity_us = now
            # status LED: on while idle, off for 30 ms after traffic (a visible flicker)
            io.led(io.ticks_diff_us(now, activity_us) > 30000)
            if not (n or m or up.fill):
                io.idle()
    finally:
        io.data_mode(False)
        io.led(False)


def banner(baud: int) -> str:
    from shared import version

    return (
        "stringcare: converter %s bridging USB <-> RS-485 at %d baud; "
        "for the REPL send CR Ctrl-C after 50 ms of quiet (mpremote does)" % (version.VERSION, baud)
    )
