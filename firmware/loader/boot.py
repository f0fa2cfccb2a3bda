# StringCare /boot.py (docs/deploy.md, "Filesystems"): MicroPython runs it before
# /main.py.  On FAT, which renames over a file by removing it first, a power cut between
# the two steps of replacing the loader leaves no /main.py but a complete
# /main.py.tmp; this finishes that rename, so the new loader runs.  "Complete" means
# ending with the loader's last line: a cut while main.py.tmp was being written (when
# /main.py did not exist yet) is not taken.  It must never raise: on rp2 an exception
# here would skip /main.py.  Written once by `stringcare deploy`, aside and renamed; a
# board without it (or with the port's own boot.py) only loses this repair.
try:
    import os

    _END = b"# end of the StringCare loader\n"
    _names = os.listdir()
    if "main.py" not in _names and "main.py.tmp" in _names:
        _tail = b""
        with open("main.py.tmp", "rb") as _f:
            while True:
                _c = _f.read(512)
                if not _c:
                    break
                _tail = (_tail + _c)[-len(_END) :]
        if _tail == _END:
            os.rename("main.py.tmp", "main.py")
            print("stringcare: boot.py: finished the interrupted loader switch")
except Exception:  # noqa: BLE001, S110 - never stop the boot
    pass
