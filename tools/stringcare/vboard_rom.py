# The "ROM" of a virtual board: what the MicroPython unix port runs first, in place of
# a board's boot sequence (MicroPython code; host tooling, never deployed).
#
#   micropython -X heapsize=... -i vboard_rom.py CONFIG.json      (cwd = the flash dir)
#
# It makes the unix port look like a board to mpremote and to `stringcare deploy`:
#   * the flash directory is the filesystem (sys.path like a board: '', '/lib');
#   * it runs main.py if present, as a board does after reset; Ctrl-C on the console
#     stops it and `-i` leaves the interpreter at the REPL (raw REPL for mpremote);
#   * Ctrl-D at the friendly REPL ends the process: the launcher restarts it, which
#     is the virtual board's soft reset (tools/stringcare/vboard.py);
# and, when the config asks, emulates a property of a particular board:
#   "micropython_version": [1, 19, 1]   the version the board reports
#   "flash_kb": 64                      a filesystem of this size (statvfs, ENOSPC)
#   "corrupt_write": "core.mpy"         every write to a file whose name ends so has
#                                       one bit flipped (a failing flash or link)
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


def _open(name, mode="r", *args, **kwargs):
    f = _real_open(name, mode, *args, **kwargs)
    if ("w" in mode or "a" in mode) and (_QUOTA or _CORRUPT):
        bad = bool(_CORRUPT) and str(name).endswith(_CORRUPT)
        return _QuotaFile(f, name, _QUOTA, bad)
    return f


if _QUOTA or _CORRUPT:
    builtins.open = _open


class _Shim:
    """A module stand-in: its own attributes first, the real module's otherwise."""

    def __init__(self, real, **attrs):
        self._real = real
        for k in attrs:
            setattr(self, k, attrs[k])

    def __getattr__(self, name):
        return getattr(self._real, name)


if _QUOTA:

    def _statvfs(path):
        free = _QUOTA - _used_bytes(_ROOT)
        if free < 0:
            free = 0
        return (4096, 4096, _QUOTA // 4096, free // 4096, free // 4096, 0, 0, 0, 0, 255)

    sys.modules["os"] = _Shim(os, statvfs=_statvfs)

if "micropython_version" in _CONFIG:
    _v = tuple(_CONFIG["micropython_version"]) + ("",)

    class _Impl:
        name = "micropython"
        version = _v
        _mpy = sys.implementation._mpy  # type: ignore[attr-defined]

    sys.modules["sys"] = _Shim(sys, implementation=_Impl())

print("vboard: %s booting" % _CONFIG.get("board", "unix"))
try:
    _main = _real_open("main.py").read()
except OSError:
    _main = None
if _main is not None:
    try:
        exec(_main, {"__name__": "__main__"})
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    except Exception as _e:  # noqa: BLE001 - a board prints the traceback and goes to the REPL
        sys.print_exception(_e)  # type: ignore[attr-defined]
