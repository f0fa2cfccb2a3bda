# A ring store in a file, for shells with a filesystem (Linux, the unix port, a board's
# littlefs): opened, or set aside when it holds another ring, never raising.

import os

from manager_fw.blockdev import FileBlockDevice
from manager_fw.ring import Ring, StoreFormatError


def open_file_store(path, size, ring_type, segment_size):
    """A ring store in a file, for shells with a filesystem (Linux, the unix port, a
    board's littlefs): (device, fault).

    fault is None when the file is ready for its ring; a text when the file held a ring
    of another type or geometry (a copy from another manager or board): it is renamed
    to path.foreign (.foreign.1, ... when that exists), kept for `stringcare history`,
    and a new store is started; an exception (device None) when the file cannot be
    opened or made (EIO, ENOSPC, EROFS, EACCES).  Never raises: a manager starts and
    monitors without its store (ManagerCore.report_store says so)."""
    try:
        dev = FileBlockDevice(path, size)
    except Exception as e:  # noqa: BLE001 - whatever the filesystem raises
        return None, e
    try:
        Ring(dev, ring_type, segment_size)
        return dev, None
    except StoreFormatError as e:
        why = str(e)
    except Exception:  # noqa: BLE001 - unreadable: the core reports it when opening
        return dev, None
    dev.close()
    aside = path + ".foreign"
    n = 0
    while True:
        try:
            os.stat(aside)
        except OSError:
            break
        n += 1
        aside = "%s.foreign.%d" % (path, n)
    try:
        os.rename(path, aside)
        dev = FileBlockDevice(path, size)
    except Exception as e:  # noqa: BLE001
        return None, e
    return dev, (
        "%s held %s; it was kept as %s (read it with `stringcare history`) and a new "
        "store was started" % (path, why.split(";")[0].split(" belongs to ")[-1], aside)
    )
