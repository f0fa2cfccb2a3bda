# shared/fwstore: the signed manifest and the check a board runs on a staged bundle
# before it becomes active (docs/deploy.md), on a real filesystem in both interpreters.
import os
import sys

from dualtest import raises

from shared import ed25519, fwstore

# RFC 8032 TEST 1's key: a published test key, never a real builder's
SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
PUB_HEX = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
FILES = {"a.mpy": b"\x4d\x06" + bytes(range(200)), "pkg/b.py": b"X = 1\n" * 300}
META = ("unix_module", "module", "0.1.0", "0123456789abcdef")


_SUFFIX = "".join("%02x" % x for x in os.urandom(4))  # parallel runs: one folder each


def _folder():
    return "/tmp/stringcare-fwstore-%s-%s" % (sys.implementation.name, _SUFFIX)


def _rm(path):
    try:
        names = os.listdir(path)
    except OSError:
        try:
            os.remove(path)
        except OSError:
            pass
        return
    for n in names:
        _rm(path + "/" + n)
    os.rmdir(path)


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def _bundle(seed=SEED):
    folder = _folder()
    _rm(folder)
    os.mkdir(folder)
    os.mkdir(folder + "/pkg")
    listed = {}
    for path in FILES:
        _write(folder + "/" + path, FILES[path])
        listed[path] = (fwstore.sha256_hex(FILES[path]), len(FILES[path]))
    manifest = fwstore.manifest_text(META, listed).encode()
    _write(folder + "/MANIFEST", manifest)
    sig = ed25519.sign(seed, fwstore.signed_message(manifest))
    _write(folder + "/MANIFEST.sig", fwstore.signature_line(ed25519.public_key(seed), sig).encode())
    return folder, manifest


def test_manifest_round_trip():
    listed = {"x/y.mpy": ("ab" * 32, 12), "m.py": ("cd" * 32, 3)}
    text = fwstore.manifest_text(META, listed)
    assert text.split("\n")[0] == "stringcare-bundle 1"
    assert text.split("\n")[5] == "file " + "cd" * 32 + " 3 m.py"  # sorted by path
    meta, files = fwstore.parse_manifest(text.encode())
    assert meta == {"board": "unix_module", "role": "module", "version": "0.1.0",
                    "source": "0123456789abcdef"}  # fmt: skip
    assert files == listed


def test_malformed_manifests_name_the_line():
    e = raises(ValueError, fwstore.parse_manifest, b"hello\n")
    assert "not a StringCare bundle manifest" in str(e)
    e = raises(ValueError, fwstore.parse_manifest, b"stringcare-bundle 1\nfile abc 3 m.py\n")
    assert "manifest line 2 is not 'file <sha256> <size> <path>'" in str(e)
    bad = "stringcare-bundle 1\nfile %s 3 ../boot.py\n" % ("ab" * 32)
    raises(ValueError, fwstore.parse_manifest, bad.encode())  # no way out of the folder


def test_an_intact_signed_bundle_passes():
    folder, manifest = _bundle()
    try:
        assert fwstore.check(folder, [PUB_HEX]) == (None, fwstore.sha256_hex(manifest))
        assert fwstore.check(folder, [])[0] is None  # no key set yet: signature still checked
    finally:
        _rm(folder)


def test_a_changed_file_is_a_hash_mismatch():
    folder, _ = _bundle()
    try:
        _write(folder + "/pkg/b.py", FILES["pkg/b.py"][:-1] + b"2")
        why, sha = fwstore.check(folder, [PUB_HEX])
        assert sha is None
        assert why.startswith("hash mismatch: pkg/b.py has SHA-256 "), why
        assert "the signed manifest says" in why
        os.remove(folder + "/a.mpy")
        assert fwstore.check(folder, [PUB_HEX])[0].startswith(
            "hash mismatch: a.mpy has SHA-256 none"
        )
    finally:
        _rm(folder)


def test_a_changed_manifest_breaks_the_signature():
    folder, manifest = _bundle()
    try:
        _write(folder + "/MANIFEST", manifest.replace(b"0.1.0", b"0.1.1"))
        why, _ = fwstore.check(folder, [PUB_HEX])
        assert why == "the manifest's Ed25519 signature does not match: the bundle was altered"
    finally:
        _rm(folder)


def test_another_key_is_not_trusted_and_a_missing_signature_is_named():
    folder, _ = _bundle(seed=bytes(32))
    try:
        why, _ = fwstore.check(folder, [PUB_HEX])
        assert why.startswith("signed by key "), why
        assert why.endswith("which this board does not trust (it trusts d75a980182b10ab7)")
        os.remove(folder + "/MANIFEST.sig")
        assert "has no MANIFEST or MANIFEST.sig" in fwstore.check(folder, [PUB_HEX])[0]
    finally:
        _rm(folder)


def test_the_pointer_keeps_whole_lines_only():
    path = _folder() + ".pointer"
    try:
        _write(path, ("b/aaa %s\nb/bbb %s" % ("1" * 64, "2" * 30)).encode())  # cut mid-line
        assert fwstore.read_pointer(path) == [("b/aaa", "1" * 64)]
        assert fwstore.read_pointer(path + ".absent") == []
    finally:
        _rm(path)
