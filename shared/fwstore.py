# Firmware bundles on a board's filesystem: the signed manifest, and the check a board
# runs before a new bundle may become the active one (docs/deploy.md).
#
# On the board (written by `stringcare deploy`, read by the loader /main.py):
#
#   /main.py                 the loader (firmware/loader/main.py): checks the active
#                            bundle, falls back to the previous one, else bleed off
#   /stringcare_active       the pointer: one line per bundle, active first, then the
#                            previous one:  "b/<id> <sha256 of its MANIFEST>"
#                            replaced whole by a rename (atomic on littlefs and POSIX)
#   /stringcare_trust        the public keys (hex, one a line) whose bundles install
#   /b/<id>/MANIFEST         the text manifest below; <id> = its SHA-256, 12 hex digits
#   /b/<id>/MANIFEST.sig     "ed25519 <public key hex> <signature hex>"
#   /b/<id>/...              the bundle's files (stringcare_entry.py, stamp, .mpy)
#
# MANIFEST (ASCII, one record a line, sorted by path):
#
#   stringcare-bundle 1
#   board <name>
#   role <role>
#   version <firmware version>
#   source <source sha>
#   file <sha256 hex> <size> <path>
#
# The signature covers SIGNED_PREFIX + SHA-256(MANIFEST) (32 bytes): the board hashes the
# manifest with hashlib and runs SHA-512 in Python over 128 bytes only.  A MicroPython
# image without hashlib (stock NUCLEO_G474RE before 1.27) hashes with shared/sha256.py.
#
# Everything here also runs on CPython (the host builds and parses manifests with it).

import os

from shared import ed25519
from shared.sha256 import sha256

MAGIC = "stringcare-bundle 1"
SIGNED_PREFIX = b"stringcare bundle manifest v1\n"
POINTER = "stringcare_active"
TRUST = "stringcare_trust"
BUNDLES = "b"
ENTRY = "stringcare_entry"
LOADER = "stringcare_loader.py"  # the loader as the bundle carries it (-> /main.py)
BOOT = "stringcare_boot.py"  # the FAT repair as the bundle carries it (-> /boot.py)
ID_HEX = 12


def sha256_hex(data):
    return "".join("%02x" % x for x in sha256(data).digest())


def file_sha256(path):
    """SHA-256 (hex) of a file, read in 512-byte pieces; None when it cannot be read."""
    h = sha256()
    buf = bytearray(512)
    try:
        with open(path, "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                h.update(buf if n == 512 else buf[:n])
    except OSError:
        return None
    return "".join("%02x" % x for x in h.digest())


def manifest_text(meta, files):
    """The MANIFEST text: meta = (board, role, version, source), files = {path: (sha, size)}."""
    lines = [MAGIC, "board " + meta[0], "role " + meta[1], "version " + meta[2]]
    lines.append("source " + meta[3])
    for path in sorted(files):
        sha, size = files[path]
        lines.append("file %s %d %s" % (sha, size, path))
    return "\n".join(lines) + "\n"


def parse_manifest(data):
    """(meta dict, {path: (sha, size)}) from MANIFEST bytes; ValueError names what is wrong."""
    text = bytes(data).decode()
    lines = text.split("\n")
    if not lines or lines[0] != MAGIC:
        raise ValueError("not a StringCare bundle manifest (first line is not %r)" % MAGIC)
    meta = {}
    files = {}
    for n, line in enumerate(lines[1:], 2):
        if not line:
            continue
        parts = line.split(" ")
        if parts[0] == "file":
            if len(parts) != 4 or len(parts[1]) != 64 or ".." in parts[3]:
                raise ValueError("manifest line %d is not 'file <sha256> <size> <path>'" % n)
            files[parts[3]] = (parts[1], int(parts[2]))
        elif len(parts) == 2:
            meta[parts[0]] = parts[1]
        else:
            raise ValueError("manifest line %d is not understood: %r" % (n, line[:60]))
    return meta, files


def signed_message(manifest):
    return SIGNED_PREFIX + sha256(bytes(manifest)).digest()


def signature_line(public_key, signature):
    return "ed25519 %s %s\n" % (
        "".join("%02x" % x for x in public_key),
        "".join("%02x" % x for x in signature),
    )


def parse_signature(data):
    """(public key bytes, signature bytes) from MANIFEST.sig; ValueError when malformed."""
    parts = bytes(data).decode().split()
    if len(parts) != 3 or parts[0] != "ed25519" or len(parts[1]) != 64 or len(parts[2]) != 128:
        raise ValueError("MANIFEST.sig is not 'ed25519 <public key hex> <signature hex>'")
    return bytes.fromhex(parts[1]), bytes.fromhex(parts[2])


def read_pointer(path=POINTER):
    """[(dir, manifest sha)] from the pointer file, active first; [] when absent."""
    out: list = []
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return out
    for line in text.split("\n"):
        parts = line.split(" ")
        if len(parts) == 2 and len(parts[1]) == 64:
            out.append((parts[0], parts[1]))
    return out


def read_trust(path=TRUST):
    """The trusted public keys (hex strings) on this board; [] when none is set."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return []
    return [k for k in text.split() if len(k) == 64]


def check(folder, trusted):
    """Check a bundle folder on this filesystem: the manifest's signature by one of the
    trusted keys (hex; an empty list skips the key check, not the signature) and every
    file's SHA-256 and size.  Returns (None, manifest sha) when it may be installed,
    (message, None) naming the first thing wrong otherwise."""
    try:
        with open(folder + "/MANIFEST", "rb") as f:
            manifest = f.read()
        with open(folder + "/MANIFEST.sig", "rb") as f:
            sig_data = f.read()
    except OSError as exc:
        return "%s has no MANIFEST or MANIFEST.sig (%s)" % (folder, exc), None
    try:
        pub, sig = parse_signature(sig_data)
        _, files = parse_manifest(manifest)
    except ValueError as exc:
        return str(exc), None
    pub_hex = "".join("%02x" % x for x in pub)
    if trusted and pub_hex not in trusted:
        return (
            "signed by key %s, which this board does not trust (it trusts %s)"
            % (pub_hex[:16], ", ".join(k[:16] for k in trusted)),
            None,
        )
    if not ed25519.verify(pub, signed_message(manifest), sig):
        return "the manifest's Ed25519 signature does not match: the bundle was altered", None
    for path in sorted(files):
        sha, size = files[path]
        got = file_sha256(folder + "/" + path)
        if got != sha:
            try:
                have = os.stat(folder + "/" + path)[6]
            except OSError:
                have = -1
            return (
                "hash mismatch: %s has SHA-256 %s (%d B), the signed manifest says %s (%d B)"
                % (path, (got or "none")[:16], have, sha[:16], size),
                None,
            )
    return None, sha256_hex(manifest)
