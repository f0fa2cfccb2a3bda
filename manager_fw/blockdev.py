# Block devices for the history store and the event log.
#
# The stores are written against NOR-flash rules, the strictest of their targets: a
# device is `size` bytes in erase blocks of `erase_size` bytes; erase(block) sets a
# block to 0xFF; program(addr, buf, n) can only turn 1 bits into 0 bits; reads are
# free.  A store never programs a byte twice except to clear more bits (its commit
# marks), so the same code runs on
#   - SimFlash: RAM model of a NOR chip for tests, that can cut power after any byte,
#   - FileBlockDevice: a file (CPython on a Linux manager or host tools; a littlefs
#     file on a board), erase = write 0xFF,
#   - ExtBlockDevice: any MicroPython block device with the extended interface
#     (readblocks/writeblocks with offset, ioctl 4/5/6), e.g. a raw flash partition,
#   - Partition: a window of another device (history and event log side by side).
#
# Interface every device provides:
#   size, erase_size              bytes
#   read(addr, buf, n)            buf[0:n] = bytes at addr
#   program(addr, buf, n)         bytes at addr &= buf[0:n]
#   erase(block)                  block-th erase block to 0xFF
#   sync()                        everything programmed so far is durable
#   close()

import os

from shared.compat import const

ERASED = const(0xFF)
DEFAULT_ERASE_SIZE = const(4096)
DEFAULT_PAGE_SIZE = const(256)


class PowerCut(Exception):
    """SimFlash: the simulated supply failed; nothing more is read or written until power_on()."""


class FlashError(Exception):
    """A store broke the flash rules (program over programmed bits, out of range)."""


class BlockDevice:
    size = 0
    erase_size = DEFAULT_ERASE_SIZE

    def read(self, addr, buf, n):
        raise NotImplementedError

    def program(self, addr, buf, n):
        raise NotImplementedError

    def erase(self, block):
        raise NotImplementedError

    def sync(self):
        pass

    def close(self):
        pass

    def _check(self, addr, n):
        if addr < 0 or n < 0 or addr + n > self.size:
            raise FlashError(
                "access of %d bytes at 0x%x is outside the device (%d bytes)" % (n, addr, self.size)
            )


class SimFlash(BlockDevice):
    """NOR flash in RAM: 0xFF when erased, program clears bits only, power can be cut.

    cut_after(n) lets n more byte programs (or erase operations) happen, then the
    supply fails: the n+1-th byte is left partially programmed (its bits in
    `torn_keep` keep their old value: 0xFF = not programmed at all) and PowerCut is
    raised; an erase at the cut leaves the first half of the block erased and the rest
    as it was.  Every later access raises PowerCut until power_on().  strict mode
    raises FlashError when a program would need a 0 -> 1 change (real NOR would
    silently leave the 0: a store bug).
    """

    def __init__(self, size, erase_size=DEFAULT_ERASE_SIZE, page_size=DEFAULT_PAGE_SIZE):
        if size <= 0 or size % erase_size or erase_size % page_size:
            raise ValueError(
                "flash size %d must be a positive multiple of the erase size %d, itself a "
                "multiple of the page size %d" % (size, erase_size, page_size)
            )
        self.size = size
        self.erase_size = erase_size
        self.page_size = page_size
        self.data = bytearray(size)
        self._fill(0, size)
        self.strict = True
        self.budget = -1
        self.torn_keep = 0xFF
        self.dead = False
        self.bytes_programmed = 0
        self.erases = 0

    def _fill(self, start, end):
        data = self.data
        i = start
        while i < end:
            data[i] = ERASED
            i += 1

    def cut_after(self, operations, torn_keep=0xFF):
        self.budget = operations
        self.torn_keep = torn_keep

    def power_on(self):
        self.dead = False
        self.budget = -1

    def _alive(self):
        if self.dead:
            raise PowerCut("flash is unpowered")

    def read(self, addr, buf, n):
        self._alive()
        self._check(addr, n)
        data = self.data
        i = 0
        while i < n:
            buf[i] = data[addr + i]
            i += 1

    def program(self, addr, buf, n):
        self._alive()
        self._check(addr, n)
        data = self.data
        i = 0
        while i < n:
            a = addr + i
            old = data[a]
            new = buf[i]
            if self.strict and (new & ~old) & 0xFF:
                raise FlashError(
                    "program 0x%02x over 0x%02x at 0x%x needs 0->1 bits: erase first"
                    % (new, old, a)
                )
            if self.budget == 0:
                data[a] = old & (new | self.torn_keep)
                self.dead = True
                raise PowerCut("power cut while programming 0x%x" % a)
            if self.budget > 0:
                self.budget -= 1
            data[a] = old & new
            self.bytes_programmed += 1
            i += 1

    def erase(self, block):
        self._alive()
        start = block * self.erase_size
        self._check(start, self.erase_size)
        if self.budget == 0:
            self._fill(start, start + self.erase_size // 2)
            self.dead = True
            raise PowerCut("power cut while erasing block %d" % block)
        if self.budget > 0:
            self.budget -= 1
        self._fill(start, start + self.erase_size)
        self.erases += 1


class FileBlockDevice(BlockDevice):
    """A file as a block device.

    size > 0: open or create the file with that size (a new or shorter file is filled
    up with 0xFF).  size 0 with readonly: the file as it is, whatever its length (a
    truncated download stays readable up to where it ends).
    """

    def __init__(self, path, size=0, erase_size=DEFAULT_ERASE_SIZE, readonly=False):
        self.path = path
        self.erase_size = erase_size
        self.readonly = readonly
        self._ff = bytearray(256)
        for i in range(256):
            self._ff[i] = ERASED
        try:
            existing = os.stat(path)[6]
        except OSError:
            existing = -1
        if readonly:
            if existing < 0:
                raise OSError("no such store file: %s" % path)
            self.f = open(path, "rb")
            self.size = existing
            return
        if size <= 0 or size % erase_size:
            raise ValueError(
                "store file size %d must be a positive multiple of the erase size %d"
                % (size, erase_size)
            )
        self.f = self._open(path, "r+b" if existing >= 0 else "w+b")
        self.size = size
        if existing < size:
            self.f.seek(existing if existing > 0 else 0)
            pos = existing if existing > 0 else 0
            while pos < size:
                chunk = 256 if size - pos >= 256 else size - pos
                self.f.write(memoryview(self._ff)[:chunk])
                pos += chunk
            self.f.flush()

    @staticmethod
    def _open(path, mode):
        return open(path, mode)

    def read(self, addr, buf, n):
        self._check(addr, n)
        self.f.seek(addr)
        got = self.f.readinto(memoryview(buf)[:n])
        if got != n:
            raise OSError(
                "short read of %d/%d bytes at 0x%x in %s" % (got or 0, n, addr, self.path)
            )

    def program(self, addr, buf, n):
        if self.readonly:
            raise OSError("%s is open read-only" % self.path)
        self._check(addr, n)
        self.f.seek(addr)
        self.f.write(memoryview(buf)[:n])

    def erase(self, block):
        if self.readonly:
            raise OSError("%s is open read-only" % self.path)
        start = block * self.erase_size
        self._check(start, self.erase_size)
        self.f.seek(start)
        left = self.erase_size
        while left > 0:
            chunk = 256 if left >= 256 else left
            self.f.write(memoryview(self._ff)[:chunk])
            left -= chunk

    def sync(self):
        if self.readonly:
            return
        self.f.flush()
        fsync = getattr(os, "fsync", None)
        if fsync is not None:
            fsync(self.f.fileno())

    def close(self):
        self.f.close()


class ExtBlockDevice(BlockDevice):
    """Adapter for a MicroPython block device with the extended interface.

    bdev.readblocks(block, buf, offset), bdev.writeblocks(block, buf, offset) (with an
    offset it programs without erasing), bdev.ioctl(4, 0) block count, ioctl(5, 0)
    block size, ioctl(6, block) erase.  rp2.Flash and pyb.Flash provide it.
    """

    def __init__(self, bdev):
        self.bdev = bdev
        self.erase_size = bdev.ioctl(5, 0)
        self.size = bdev.ioctl(4, 0) * self.erase_size

    def read(self, addr, buf, n):
        self._check(addr, n)
        bs = self.erase_size
        self.bdev.readblocks(addr // bs, memoryview(buf)[:n], addr % bs)

    def program(self, addr, buf, n):
        self._check(addr, n)
        bs = self.erase_size
        self.bdev.writeblocks(addr // bs, memoryview(buf)[:n], addr % bs)

    def erase(self, block):
        self._check(block * self.erase_size, self.erase_size)
        self.bdev.ioctl(6, block)

    def sync(self):
        self.bdev.ioctl(3, 0)


class Partition(BlockDevice):
    """Bytes [offset, offset + size) of another device, on erase-block boundaries."""

    def __init__(self, device, offset, size):
        es = device.erase_size
        if offset % es or size % es or size <= 0 or offset < 0 or offset + size > device.size:
            raise ValueError(
                "partition %d+%d must lie on %d-byte erase blocks inside the %d-byte device"
                % (offset, size, es, device.size)
            )
        self.device = device
        self.offset = offset
        self.size = size
        self.erase_size = es
        self._first_block = offset // es

    def read(self, addr, buf, n):
        self._check(addr, n)
        self.device.read(self.offset + addr, buf, n)

    def program(self, addr, buf, n):
        self._check(addr, n)
        self.device.program(self.offset + addr, buf, n)

    def erase(self, block):
        self._check(block * self.erase_size, self.erase_size)
        self.device.erase(self._first_block + block)

    def sync(self):
        self.device.sync()
