# The site key of authenticated bus commands (docs/protocol.md, "Authentication"):
# 16 random bytes, kept as 32 hex digits in a file beside the site configuration.  A
# manager that starts without one makes one (os.urandom); modules learn it when their
# button is pressed during addressing, or over USB at deploy (`--site-key`).
#
#   key = load_or_create("site_key.hex")     # bytes, 16

from shared import protocol as p


def parse(text: str) -> bytes:
    """The key from its hex text; ValueError naming what is wrong."""
    t = text.strip()
    if len(t) != 2 * p.KEY_LEN:
        raise ValueError("site key: need %d hex digits, got %d" % (2 * p.KEY_LEN, len(t)))
    try:
        return bytes(int(t[i : i + 2], 16) for i in range(0, len(t), 2))
    except ValueError:
        raise ValueError("site key: not hex digits: %r" % t) from None


def to_hex(key) -> str:
    return "".join("%02x" % b for b in key)


def load_or_create(path: str = "site_key.hex") -> bytes:
    """Read the key file; create it with a fresh random key when it does not exist."""
    try:
        with open(path) as f:
            return parse(f.read())
    except OSError:
        pass
    import os

    key = os.urandom(p.KEY_LEN)
    with open(path, "w") as f:
        f.write(to_hex(key) + "\n")
    return key
