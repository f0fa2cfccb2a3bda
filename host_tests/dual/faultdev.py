# A block device that fails the way a dying SD card, a full disk or a read-only
# filesystem does: OSError(errno) from program / erase / sync (and read, when asked) at
# a chosen point, then either every time (persistent) or once.  It wraps a real device
# (SimFlash, a FileBlockDevice) and forwards everything else, so what reaches the medium
# before the failure is really there: a program that fails at byte n has written the
# n bytes before it.
from manager_fw.blockdev import BlockDevice

EIO = 5
ENOSPC = 28
EROFS = 30


class FailingDevice(BlockDevice):
    def __init__(self, inner):
        self.inner = inner
        self.size = inner.size
        self.erase_size = inner.erase_size
        self.budget = -1  # byte programs / erases / syncs still allowed; -1: no failure
        self.errno = EIO
        self.persistent = False
        self.fail_reads = False
        self.erase_works = False
        self.failures = 0

    def fail_after(self, operations, errno=EIO, persistent=False, reads=False, erase_works=False):
        """After `operations` byte programs / erases / syncs, fail with errno (every
        operation from then on when persistent).  erase_works: erases never fail (the
        worst case for a ring: each retry could erase a segment)."""
        self.budget = operations
        self.errno = errno
        self.persistent = persistent
        self.fail_reads = reads
        self.erase_works = erase_works

    def heal(self):
        self.budget = -1
        self.fail_reads = False

    def _spend(self):
        """True when this operation fails."""
        if self.budget < 0:
            return False
        if self.budget == 0:
            self.failures += 1
            if not self.persistent:
                self.budget = -1
            return True
        self.budget -= 1
        return False

    def read(self, addr, buf, n):
        if self.fail_reads and self.budget == 0:
            self.failures += 1
            raise OSError(self.errno)
        self.inner.read(addr, buf, n)

    def program(self, addr, buf, n):
        one = bytearray(1)
        for i in range(n):
            if self._spend():
                raise OSError(self.errno)
            one[0] = buf[i]
            self.inner.program(addr + i, one, 1)

    def erase(self, block):
        if not self.erase_works and self._spend():
            raise OSError(self.errno)
        self.inner.erase(block)

    def sync(self):
        if self._spend():
            raise OSError(self.errno)
        self.inner.sync()

    def close(self):
        self.inner.close()


class CountingDevice(BlockDevice):
    """Forwards to a device and counts what it is asked to do: programs, erases and
    syncs (the operations that take a flash chip time), and reads."""

    def __init__(self, inner):
        self.inner = inner
        self.size = inner.size
        self.erase_size = inner.erase_size
        self.programs = 0
        self.erases = 0
        self.syncs = 0
        self.reads = 0

    def writes(self):
        """Programs, erases and syncs so far."""
        return self.programs + self.erases + self.syncs

    def read(self, addr, buf, n):
        self.reads += 1
        self.inner.read(addr, buf, n)

    def program(self, addr, buf, n):
        self.programs += 1
        self.inner.program(addr, buf, n)

    def erase(self, block):
        self.erases += 1
        self.inner.erase(block)

    def sync(self):
        self.syncs += 1
        self.inner.sync()
