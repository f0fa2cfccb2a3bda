# The Ri baseline table on the manager's filesystem (manager_fw/ri_judge.py encode /
# decode): one small binary file, replaced atomically (written to a temporary file, read
# back and compared, renamed over the old one), so a power cut leaves the old table or
# the new one.  Kept apart from site.json: a configuration edit or a firmware update
# leaves the baselines alone.
#
#   core.judge.attach_ri_store(RiStore("/ri_baselines.bin"), now_s)   # after the core


class RiStore:
    def __init__(self, path: str = "ri_baselines.bin") -> None:
        self.path = path
        self.writes = 0

    def load(self):
        """The stored bytes, or None when there is no table yet."""
        for path in (self.path, self.path + ".tmp"):
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError:
                pass
        return None

    def save(self, data) -> None:
        import os

        tmp = self.path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        with open(tmp, "rb") as f:
            if f.read() != data:
                raise OSError("%s did not read back as written (storage fault)" % tmp)
        try:
            os.rename(tmp, self.path)
        except OSError:
            # filesystems whose rename does not replace (FAT): remove, then rename; a
            # cut between the two leaves the checked temporary file, which load() takes
            os.remove(self.path)
            os.rename(tmp, self.path)
        self.writes += 1


class MemoryRiStore:
    """The same in memory (tests, the simulator): survives a new core, not the process."""

    def __init__(self) -> None:
        self.data: bytes | None = None
        self.writes = 0

    def load(self):
        return self.data

    def save(self, data) -> None:
        self.data = bytes(data)
        self.writes += 1
