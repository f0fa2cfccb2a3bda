"""Fault injection inside a running `stringcare manager` (hidden options, used only by
the fault campaign, docs/reliability.md).

    --fault-storage history:EIO@8     writes to history.bin fail with EIO from 8 s on
    --fault-storage events:ENOSPC@0   writes to events.bin fail with ENOSPC from the start

A real failing SD card or full disk cannot be produced on demand on every machine; the
wrapper makes the OS error appear exactly where the kernel would report it (program,
erase, sync of the store's file), so everything above it (ring, history store, core,
shell) is the product's own code.
"""

from __future__ import annotations

import errno
import os
import time
from typing import Any

from stringcare.errors import CliError

STORES = ("history", "events")
ERRNOS = {"EIO": errno.EIO, "ENOSPC": errno.ENOSPC, "EROFS": errno.EROFS}


class FailingWrites:
    """A block device whose writes fail with `err` from `at` (monotonic s) on."""

    def __init__(self, inner: Any, err: int, at: float) -> None:
        self.inner = inner
        self.err = err
        self.at = at
        self.size = inner.size
        self.erase_size = inner.erase_size
        self.failures = 0

    def _fail(self) -> None:
        if time.monotonic() >= self.at:
            self.failures += 1
            raise OSError(self.err, os.strerror(self.err))

    def read(self, addr: int, buf: Any, n: int) -> None:
        self.inner.read(addr, buf, n)

    def program(self, addr: int, buf: Any, n: int) -> None:
        self._fail()
        self.inner.program(addr, buf, n)

    def erase(self, block: int) -> None:
        self._fail()
        self.inner.erase(block)

    def sync(self) -> None:
        self._fail()
        self.inner.sync()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def parse(specs: list[str]) -> dict[str, tuple[int, float]]:
    """['history:EIO@8'] -> {'history': (errno, seconds after start)}."""
    out: dict[str, tuple[int, float]] = {}
    for spec in specs:
        store, _, rest = spec.partition(":")
        name, _, after = rest.partition("@")
        try:
            seconds = float(after or 0)
        except ValueError:
            seconds = -1
        if store not in STORES or name not in ERRNOS or seconds < 0:
            raise CliError(
                "--fault-storage %r: give STORE:ERRNO@SECONDS, STORE one of %s, ERRNO one of "
                "%s" % (spec, ", ".join(STORES), ", ".join(ERRNOS))
            )
        out[store] = (ERRNOS[name], seconds)
    return out


def device_wrapper(specs: list[str]):
    """The wrapper LinuxManager applies to each store device, or None."""
    faults = parse(specs)
    if not faults:
        return None
    t0 = time.monotonic()

    def wrap(store: str, device: Any) -> Any:
        if store not in faults or device is None:
            return device
        err, after = faults[store]
        return FailingWrites(device, err, t0 + after)

    return wrap
