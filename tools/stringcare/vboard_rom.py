# The "ROM" of a virtual board: what the MicroPython unix port runs first, in place of
# a board's boot sequence (MicroPython code; host tooling, never deployed).
#
#   micropython -X heapsize=... -i vboard_rom.py CONFIG.json      (cwd = the flash dir)
#
# It makes the unix port look like a board to mpremote and to `stringcare deploy`:
#   * the flash directory is the filesystem (sys.path like a board: '', '/lib');
#   * it runs boot.py and then main.py if present, as a board does after reset (an
#     exception in boot.py skips main.py, as on rp2); Ctrl-C on the console
#     stops it and `-i` leaves the interpreter at the REPL (raw REPL for mpremote);
#   * Ctrl-D at the friendly REPL ends the process: the launcher restarts it, which
#     is the virtual board's soft reset (tools/stringcare/vboard.py);
# and, when the config asks, emulates a property of a particular board:
#   "micropython_version": [1, 19, 1]   the version the board reports
#   "flash_kb": 64                      a filesystem of this size (statvfs, ENOSPC)
#   "corrupt_write": "core.mpy"         every write to a file whose name ends so has
#                                       one bit flipped (a failing flash or link)
#   "power_cut_at": 17                  power fails at the 17th flash operation after
#                                       the firmware stopped (what a deploy does at the
#                                       REPL): file create, write, rename, remove, mkdir,
#                                       rmdir.  The board prints "vboard: power cut" and
#                                       does nothing more; the launcher then cuts it off
#                                       and powers it up again (vboard.py)
#   "power_cut_mid": true               ... and when that operation is a write, only the
#                                       first half of its bytes reach the flash
#   "fat_rename": true                  renaming over an existing file is two flash
#                                       operations, remove then rename, as MicroPython's
#                                       FAT driver does it (a cut can fall between)
#   "no_hashlib": true                  an image without hashlib (the stock NUCLEO_G474RE
#                                       image before MicroPython 1.27): `import hashlib`
#                                       raises ImportError
#   "flash_log": "/path/ops.txt"        one line per such flash operation, appended to a
#                                       host file ("N kind path [bytes]"): where to cut
import builtins
import json
import os
import sys

_CONFIG = json.load(open(sys.argv[1])) if len(sys.argv) > 1 else {}
_ROOT = os.getcwd()
sys.path.clear()
sys.path.append("")
sys.path.append("/lib")
_real_open = builtins.open


def _used_bytes(top):
    total = 0
    for entry in os.ilistdir(top):  # type: ignore[attr-defined]
        name, kind = entry[0], entry[1]
        path = top + "/" + name
        if kind == 0x4000:
            total += 4096 + _used_bytes(path)
        else:
            total += (os.stat(path)[6] + 4095) // 4096 * 4096
    return total


_CUT_AT = _CONFIG.get("power_cut_at") or 0
_FAT = bool(_CONFIG.get("fat_rename"))
_CUT_MID = bool(_CONFIG.get("power_cut_mid"))
_LOG = _CONFIG.get("flash_log") or ""
_OPS = [0, False]  # flash operations counted, armed (the firmware has stopped)


def _flash_op(kind, path, data=None, f=None):
    """Count one flash operation; at the cut, let (half of) it happen and stop."""
    if not _OPS[1] or not (_CUT_AT or _LOG):
        return False
    _OPS[0] += 1
    if _LOG:
        with _real_open(_LOG, "a") as log:
            log.write(
                "%d %s %s%s\n" % (_OPS[0], kind, path, "" if data is None else " %d" % len(data))
            )
    if _OPS[0] != _CUT_AT:
        return False
    if data is not None and f is not None and _CUT_MID:
        f.write(data[: len(data) // 2])
    print("\r\nvboard: power cut\r")
    import time

    while True:  # the launcher kills the process: nothing more reaches the flash
        time.sleep(1)


class _QuotaFile:
    def __init__(self, f, name, quota, corrupt):
        self._f = f
        self._name = name
        self._quota = quota
        self._corrupt = corrupt

    def write(self, data):
        if self._corrupt and len(data):
            data = bytearray(data)
            data[len(data) // 2] ^= 0x10
        if self._quota and _used_bytes(_ROOT) + len(data) > self._quota:
            raise OSError(28)  # ENOSPC, as littlefs raises it on a full board
        _flash_op("write", self._name, data, self._f)
        return self._f.write(data)

    def close(self):
        return self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *args):
        self._f.close()

    def __getattr__(self, name):
        return getattr(self._f, name)


_QUOTA = _CONFIG.get("flash_kb", 0) * 1024
_CORRUPT = _CONFIG.get("corrupt_write", "")


_WRAP = bool(_QUOTA or _CORRUPT or _CUT_AT or _LOG)


def _open(name, mode="r", *args, **kwargs):
    writing = "w" in mode or "a" in mode
    if writing:
        _flash_op("create", name)
    f = _real_open(name, mode, *args, **kwargs)
    if writing:
        bad = bool(_CORRUPT) and str(name).endswith(_CORRUPT)
        return _QuotaFile(f, name, _QUOTA, bad)
    return f


if _WRAP:
    builtins.open = _open


class _Shim:
    """A module stand-in: its own attributes first, the real module's otherwise."""

    def __init__(self, real, **attrs):
        self._real = real
        for k in attrs:
            setattr(self, k, attrs[k])

    def __getattr__(self, name):
        return getattr(self._real, name)


_os_attrs = {}
if _QUOTA:

    def _statvfs(path):
        free = _QUOTA - _used_bytes(_ROOT)
        if free < 0:
            free = 0
        return (4096, 4096, _QUOTA // 4096, free // 4096, free // 4096, 0, 0, 0, 0, 255)

    _os_attrs["statvfs"] = _statvfs
if _CUT_AT or _LOG:

    def _op(kind, real):
        def run(*args):
            _flash_op(kind, " ".join(args))
            return real(*args)

        return run

    for _name in ("rename", "remove", "mkdir", "rmdir"):
        _os_attrs[_name] = _op(_name, getattr(os, _name))
if _FAT:
    _real_rename = _os_attrs.get("rename", os.rename)
    _real_remove = _os_attrs.get("remove", os.remove)

    def _fat_rename(old, new):
        try:
            os.stat(new)
            exists = True
        except OSError:
            exists = False
        if exists:  # vfs_fat: f_rename says FR_EXIST, so f_unlink(new), then f_rename
            _real_remove(new)
        _real_rename(old, new)

    _os_attrs["rename"] = _fat_rename
if _os_attrs:
    sys.modules["os"] = _Shim(os, **_os_attrs)

if _CONFIG.get("no_hashlib"):
    _real_import = builtins.__import__

    def _import(name, *args):
        if name in ("hashlib", "uhashlib"):
            raise ImportError("no module named '%s'" % name)
        return _real_import(name, *args)

    builtins.__import__ = _import

if "micropython_version" in _CONFIG:
    _v = tuple(_CONFIG["micropython_version"]) + ("",)

    class _Impl:
        name = "micropython"
        version = _v
        _mpy = sys.implementation._mpy  # type: ignore[attr-defined]

    sys.modules["sys"] = _Shim(sys, implementation=_Impl())

print("vboard: %s booting" % _CONFIG.get("board", "unix"))
_boot_ok = True
try:
    _boot = _real_open("boot.py").read()
except OSError:
    _boot = None
if _boot is not None:
    try:
        exec(_boot, {"__name__": "__main__"})
    except Exception as _e:  # noqa: BLE001 - as on rp2: the traceback, and no main.py
        sys.print_exception(_e)  # type: ignore[attr-defined]
        _boot_ok = False
try:
    _main = _real_open("main.py").read() if _boot_ok else None
except OSError:
    _main = None
if _main is not None:
    try:
        exec(_main, {"__name__": "__main__"})
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    except Exception as _e:  # noqa: BLE001 - a board prints the traceback and goes to the REPL
        sys.print_exception(_e)  # type: ignore[attr-defined]
_OPS[1] = True  # the firmware stopped: what reaches the flash now is counted
