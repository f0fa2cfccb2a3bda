"""`stringcare bundle --keygen/--sign`: keys, signed manifests, and the messages for
wrong key files (docs/deploy.md, signing keys)."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
from pathlib import Path

from host_support import REPO

from shared import ed25519, fwstore
from stringcare import bundle


def stringcare_cmd(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("stringcare", path=str(Path(sys.executable).parent))
    assert exe
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=600, cwd=REPO)


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(
    tmp_path: Path,
) -> None:
    key = tmp_path / "site.key"
    proc = stringcare_cmd("bundle", "--keygen", str(key))
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    pub = Path(str(key) + ".pub").read_text().split()
    assert pub[0] == "stringcare-ed25519-public-key"
    assert bytes.fromhex(pub[1]) == ed25519.public_key(bundle.load_key(key))
    assert pub[1] in proc.stdout
    again = stringcare_cmd("bundle", "--keygen", str(key))
    assert again.returncode == 2
    assert "exists: keygen never overwrites a key" in again.stderr


def test_a_bundle_signed_with_a_key_verifies_and_rebuilds_byte_identical(tmp_path: Path) -> None:
    key = tmp_path / "k"
    pub = bundle.keygen(key)
    out = tmp_path / "out"
    proc = stringcare_cmd(
        "bundle", "--board", "unix_module", "--sign", str(key), "--out", str(out), "--label", "r1"
    )
    assert proc.returncode == 0, proc.stderr
    manifest = (out / "MANIFEST").read_bytes()
    got_pub, sig = fwstore.parse_signature((out / "MANIFEST.sig").read_bytes())
    assert got_pub == pub
    assert ed25519.verify(pub, fwstore.signed_message(manifest), sig)
    meta, files = fwstore.parse_manifest(manifest)
    assert meta["board"] == "unix_module" and "stringcare_entry.py" in files
    assert "LABEL = 'r1'" in (out / "stringcare_bundle.py").read_text()
    for path, (sha, size) in files.items():
        assert fwstore.file_sha256(str(out / path)) == sha and (out / path).stat().st_size == size
    first = bundle.load(out)
    assert first.id in proc.stdout
    again = bundle.build(REPO, "unix_module", out, key=key, label="r1")
    assert (again.id, again.signature_line) == (first.id, first.signature_line)


def test_wrong_key_files_are_named(tmp_path: Path) -> None:
    key = tmp_path / "k"
    bundle.keygen(key)
    cases = {
        str(key) + ".pub": "is a public key",
        str(tmp_path / "absent"): "does not exist",
        str(tmp_path / "k.txt"): "is not a StringCare Ed25519 private key",
    }
    (tmp_path / "k.txt").write_text("hello\n")
    for path, what in cases.items():
        proc = stringcare_cmd("bundle", "--board", "unix_module", "--sign", path)
        assert proc.returncode == 2
        assert "stringcare: error: signing key %s %s" % (path, what) in proc.stderr
