# The files of a site configuration: site.json kept safe across power cuts and bad edits
# (a checked temp file renamed over it, a last good copy in site.json.bak that load()
# falls back to).  The parser (manager_fw/config.py) is imported when a file is read or
# saved, not before: a board's shell holds an OsFiles without loading it.

import json

from manager_fw.site import ConfigError, SiteConfig
from shared.compat import const

MAX_TEXT_BYTES = const(65536)  # a site.json of 600 modules and every option is < 20 KB


class OsFiles:
    """The files of a configuration on the interpreter's filesystem."""

    def read(self, path: str):
        """The file's bytes (at most MAX_TEXT_BYTES + 1), None when it does not exist;
        OSError when it exists but cannot be read."""
        try:
            f = open(path, "rb")
        except OSError as e:
            if e.args and e.args[0] == 2:  # ENOENT
                return None
            raise
        with f:
            return f.read(MAX_TEXT_BYTES + 1)

    def write(self, path: str, text: str) -> None:
        with open(path, "w") as f:
            f.write(text)
            try:
                f.flush()
            except AttributeError:
                pass
        try:
            import os

            if hasattr(os, "sync"):
                os.sync()
        except OSError:
            pass

    def rename(self, old: str, new: str) -> None:
        import os

        try:
            os.rename(old, new)
        except OSError:
            # filesystems whose rename does not replace (FAT): remove, then rename.  A
            # cut between the two leaves no `new`; load() then takes the checked temp.
            os.remove(new)
            os.rename(old, new)

    def remove(self, path: str) -> None:
        import os

        try:
            os.remove(path)
        except OSError:
            pass


class ConfigStore:
    """site.json, kept safe across power cuts and bad edits.

    save(): write site.json.tmp, read it back and validate it (the check), rename it over
    site.json (atomic on POSIX and littlefs), then refresh site.json.bak the same way.
    load(): site.json; if it is missing or does not validate, the problem is reported in
    `problems` and the last good configuration is used: site.json.tmp when a save was
    cut after its check, else site.json.bak.  `source` names the file in use,
    `fell_back` is True when it is not site.json.
    """

    def __init__(self, path: str = "site.json", files=None) -> None:
        self.path = path
        self.files = files if files is not None else OsFiles()
        self.problems: list = []
        self.source = ""
        self.fell_back = False
        self.text = ""

    def _try(self, path: str):
        try:
            raw = self.files.read(path)
        except Exception as e:  # noqa: BLE001 - EIO, EACCES, a directory: a message
            return None, "%s: cannot be read (%s: %s)" % (path, type(e).__name__, e)
        if raw is None:
            return None, "%s: missing" % path
        try:
            from manager_fw import config

            text = config.decode_text(raw)
            return config.config_from_text(text), text
        except ConfigError as e:
            return None, "%s: %s" % (path, e)

    def load(self) -> SiteConfig:
        """The configuration to run with; ConfigError when no file is usable at all."""
        self.problems = []
        main = self.path
        cfg, info = self._try(main)
        if cfg is not None:
            self.source = main
            self.fell_back = False
            self.text = info
            try:
                self.files.remove(main + ".tmp")  # a save that never completed
            except Exception:  # noqa: BLE001 - a read-only filesystem: harmless leftover
                pass
            try:
                bak = self.files.read(main + ".bak")
            except Exception:  # noqa: BLE001 - unreadable: written anew below
                bak = None
            if isinstance(bak, (bytes, bytearray)):
                same = bytes(bak) == info.encode()
            else:
                same = bak == info
            if not same:
                try:
                    self._write_checked(main + ".bak", info)  # keep the last good copy
                except Exception as e:  # noqa: BLE001 - a read-only or full filesystem
                    self.problems.append(
                        "%s.bak: the last good copy could not be refreshed (%s: %s)"
                        % (main, type(e).__name__, e)
                    )
            return cfg
        self.problems.append(info)
        # site.json is missing only when a save was cut between its checked temp file
        # and the rename: that temp file is the newest good one.  A damaged site.json
        # (a bad edit, a storage fault) falls back to the last good copy.
        missing = info.endswith("missing")
        for path in (main + ".tmp", main + ".bak") if missing else (main + ".bak",):
            cfg, info = self._try(path)
            if cfg is not None:
                self.source = path
                self.fell_back = True
                self.text = info
                self.problems.append("using the last good configuration from %s" % path)
                return cfg
            if not info.endswith("missing"):
                self.problems.append(info)
        raise ConfigError("", "no usable configuration: " + "; ".join(self.problems))

    def _write_checked(self, path: str, text: str) -> None:
        tmp = path + ".tmp" if not path.endswith(".tmp") else path
        self.files.write(tmp, text)
        back = self.files.read(tmp)
        if isinstance(back, (bytes, bytearray)):
            try:
                back = bytes(back).decode("utf-8")
            except UnicodeError:
                back = None
        if back != text:
            raise OSError("%s did not read back as written (storage fault)" % tmp)
        from manager_fw import config

        config.config_from_text(back)
        if tmp != path:
            self.files.rename(tmp, path)

    def save(self, obj) -> SiteConfig:
        """Validate obj, then store it atomically; returns the parsed configuration."""
        from manager_fw import config

        cfg = config.parse_config(obj)
        text = json.dumps(obj)
        self._write_checked(self.path, text)
        self._write_checked(self.path + ".bak", text)
        self.source = self.path
        self.fell_back = False
        self.text = text
        self.problems = []
        return cfg
