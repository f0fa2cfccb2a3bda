"""`stringcare deploy` end to end with the real mpremote, and every error it names."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from host_support import REPO

from shared import fwstore
from stringcare import bundle as bundle_mod
from stringcare.deploy import Deployer, DeployError


def deploy(rig: Any, **kw: Any) -> Deployer:
    return Deployer(
        REPO, kw.pop("board", rig.board), rig.device, kw.pop("address", None),
        kw.pop("variant", None), kw.pop("bus", rig.bus_url), progress=lambda t: None,
    ).run()  # fmt: skip


def test_deploy_into_a_fresh_board_installs_verifies_and_the_module_answers(hil_board: Any) -> None:
    d = deploy(hil_board, address=7, variant="12v")
    assert sorted(d.copied) == sorted(d.bundle.install_files()), "a fresh board gets every file"
    assert "stringcare_entry.py" in d.copied and "module_fw/core.mpy" in d.copied
    assert "MANIFEST" in d.copied and "MANIFEST.sig" in d.copied
    assert d.boot_line == "stringcare: boot: bundle %s" % d.bundle.folder
    assert d.banner.startswith("stringcare: module ") and "address 7" in d.banner
    assert d.discovered is not None
    assert d.discovered["address"] == 7 and d.discovered["device_type"] == 1
    assert d.discovered["variant"] == 3


def test_redeploying_an_unchanged_bundle_copies_nothing(hil_board: Any) -> None:
    deploy(hil_board, address=3)
    again = deploy(hil_board, address=3)
    assert again.copied == []
    assert len(again.unchanged) == len(again.bundle.install_files())
    assert again.discovered is not None and again.discovered["address"] == 3


def test_no_board_on_the_port() -> None:
    with pytest.raises(
        DeployError, match=r"^no board on /dev/nonexistent-board: the port does not exist"
    ):
        Deployer(REPO, "unix_module", "/dev/nonexistent-board", progress=lambda t: None).run()


def test_no_board_on_the_port_through_the_cli() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "stringcare", "deploy", "--board", "unix_module",
         "--port", "/dev/nonexistent-board"],
        capture_output=True, text=True, cwd=REPO, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "stringcare: error: no board on /dev/nonexistent-board" in proc.stderr
    assert "mpremote connect list" in proc.stderr


@pytest.mark.vboard(emulate={})
def test_port_busy_names_the_holder(hil_board: Any) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import serial, sys, time; s = serial.Serial(sys.argv[1], exclusive=True); "
         "print('held', flush=True); time.sleep(60)",
         hil_board.device],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(DeployError, match=r"^port busy: .* is open in another program") as err:
            deploy(hil_board)
        assert "process %d" % holder.pid in str(err.value)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.vboard(shell=["/bin/sh", "-i"])
def test_a_port_that_answers_like_a_shell_is_not_micropython(hil_board: Any) -> None:
    with pytest.raises(
        DeployError, match=r"^not MicroPython: .* answered, but not like a MicroPython REPL"
    ):
        deploy(hil_board)


@pytest.mark.vboard(emulate={"micropython_version": [1, 19, 1]})
def test_an_old_micropython_is_an_unsupported_version(hil_board: Any) -> None:
    with pytest.raises(
        DeployError, match=r"^unsupported MicroPython version 1\.19\.1 on .*needs 1\.22\.0 to"
    ):
        deploy(hil_board)


@pytest.mark.vboard(emulate={"flash_kb": 24})
def test_a_bundle_larger_than_the_free_flash_is_filesystem_full(hil_board: Any) -> None:
    with pytest.raises(
        DeployError,
        match=r"^filesystem full: the bundle needs .* KB more, the board has .* KB free",
    ):
        deploy(hil_board)


@pytest.mark.vboard(emulate={"corrupt_write": "core.mpy"})
def test_a_corrupted_write_is_a_hash_mismatch(hil_board: Any) -> None:
    with pytest.raises(
        DeployError, match=r"^hash mismatch after copy: module_fw/core\.mpy on the board"
    ):
        deploy(hil_board)


@pytest.mark.vboard(emulate={"flash_kb": 24})
def test_filesystem_full_is_also_caught_while_writing(hil_board: Any) -> None:
    # the board claims plenty of room but runs out half way (a wrong statvfs, other writers)
    d = Deployer(REPO, "unix_module", hil_board.device, progress=lambda t: None)
    import stringcare.deploy as dep

    saved = dep.FREE_MARGIN_BYTES
    dep.FREE_MARGIN_BYTES = -(10**9)
    try:
        with pytest.raises(DeployError, match=r"^filesystem full while writing "):
            d.run()
    finally:
        dep.FREE_MARGIN_BYTES = saved
    time.sleep(0.1)


# -- signed bundles, staged install, fallback (virtual board: the tests alter its flash) --


def _vb(rig: Any) -> Any:
    if not rig.virtual:
        pytest.skip("alters the board's flash behind its back")
    return rig.vb


def _signed(tmp_path: Path, name: str, label: str = "", key: Path | None = None) -> Any:
    return bundle_mod.build(REPO, "unix_module", tmp_path / name, key=key, label=label)


def _resign_manifest(b: Any, path: str, data: bytes) -> None:
    """Change a file and its MANIFEST line, keep the old signature (a tamperer without
    the key)."""
    (b.out_dir / path).write_bytes(data)
    meta, files = fwstore.parse_manifest(b.manifest)
    files[path] = (hashlib.sha256(data).hexdigest(), len(data))
    text = fwstore.manifest_text(
        (meta["board"], meta["role"], meta["version"], meta["source"]), files
    )
    (b.out_dir / "MANIFEST").write_text(text)


def _boot_lines(vb: Any, start: int, timeout_s: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = bytes(vb.console[start:]).decode("utf-8", "replace").replace("\r", "")
        lines = [ln for ln in text.split("\n") if ln.startswith("stringcare: ")]
        if any(ln.startswith(("stringcare: module", "stringcare: boot: NO VALID")) for ln in lines):
            return lines
        time.sleep(0.02)
    raise AssertionError("the board printed no start line: %r" % bytes(vb.console[start:])[-500:])


def test_a_tampered_bundle_is_refused_and_the_board_keeps_its_firmware(
    hil_board: Any, tmp_path: Path
) -> None:
    vb = _vb(hil_board)
    first = deploy(hil_board)
    b = _signed(tmp_path, "tampered", label="t1")
    # a changed file listed with its new hash: only the signature can tell
    _resign_manifest(b, "module_fw/ui.mpy", b.data("module_fw/ui.mpy") + b"\0")
    d = Deployer(REPO, None, hil_board.device, bundle_dir=b.out_dir, progress=lambda t: None)
    with pytest.raises(DeployError, match=r"^bundle refused by the board: the manifest's Ed25519 "
                       r"signature does not match: the bundle was altered"):  # fmt: skip
        d.run()
    assert d.switched is False
    start = len(vb.console)
    vb.power_cycle()
    assert "stringcare: boot: bundle %s" % first.bundle.folder in _boot_lines(vb, start)


def test_a_file_changed_after_signing_is_a_hash_mismatch(hil_board: Any, tmp_path: Path) -> None:
    _vb(hil_board)
    b = _signed(tmp_path, "changed", label="t2")
    (b.out_dir / "shared/ri.mpy").write_bytes(b.data("shared/ri.mpy")[:-1] + b"\x00")
    with pytest.raises(DeployError, match=r"^hash mismatch after copy: shared/ri\.mpy on the "
                       r"board has SHA-256 .*, the signed manifest says"):  # fmt: skip
        Deployer(REPO, None, hil_board.device, bundle_dir=b.out_dir, progress=lambda t: None).run()


def test_a_bundle_signed_by_another_key_needs_trust_key(hil_board: Any, tmp_path: Path) -> None:
    vb = _vb(hil_board)
    first = deploy(hil_board)
    key = tmp_path / "site.key"
    pub = bundle_mod.keygen(key).hex()
    b = _signed(tmp_path, "other-key", key=key)
    dev = first.bundle.signed_by[:16]
    with pytest.raises(DeployError, match=r"^untrusted key: the bundle is signed by key %s, the "
                       r"board trusts only %s\. .*--trust-key" % (pub[:16], dev)):  # fmt: skip
        Deployer(REPO, None, hil_board.device, bundle_dir=b.out_dir, progress=lambda t: None).run()
    d = Deployer(
        REPO, None, hil_board.device, bundle_dir=b.out_dir, trust_key=True, progress=lambda t: None
    ).run()
    assert d.boot_line == "stringcare: boot: bundle %s" % b.folder
    assert (vb.flash_dir / "stringcare_trust").read_text().split() == [pub]
    # and now the development key's bundles are the strangers
    with pytest.raises(DeployError, match=r"^untrusted key: the bundle is signed by key %s"
                       % first.bundle.signed_by[:16]):  # fmt: skip
        deploy(hil_board)


def test_a_damaged_active_bundle_falls_back_to_the_previous_one(
    hil_board: Any, tmp_path: Path
) -> None:
    vb = _vb(hil_board)
    old = deploy(hil_board)
    new = Deployer(
        REPO, None, hil_board.device, bundle_dir=_signed(tmp_path, "new", label="n").out_dir,
        progress=lambda t: None,
    ).run()  # fmt: skip
    pointer = (vb.flash_dir / "stringcare_active").read_text().split("\n")
    assert [ln.split(" ")[0] for ln in pointer if ln] == [new.bundle.folder, old.bundle.folder]
    core = vb.flash_dir / new.bundle.folder / "module_fw/core.mpy"
    core.write_bytes(core.read_bytes()[:1000])  # a flash that lost part of a file
    start = len(vb.console)
    vb.power_cycle()
    lines = _boot_lines(vb, start)
    assert lines[0] == "stringcare: boot: bundle %s; skipped %s: module_fw/core.mpy damaged" % (
        old.bundle.folder,
        new.bundle.folder,
    )
    assert lines[1].startswith("stringcare: module ")


def _status(vb: Any) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads(Path(str(vb.config_path) + ".status.json").read_text()))
    except (OSError, ValueError):
        return {}


def test_no_valid_bundle_keeps_the_bleed_off_and_flashes_the_no_firmware_pattern(
    hil_board: Any,
) -> None:
    vb = _vb(hil_board)
    d = deploy(hil_board)
    for folder in (vb.flash_dir / "b").iterdir():
        (folder / "stringcare_entry.py").write_text("raise SystemExit\n")
    start = len(vb.console)
    vb.power_cycle()
    lines = _boot_lines(vb, start)
    assert lines[0] == (
        "stringcare: boot: NO VALID FIRMWARE (%s: stringcare_entry.py damaged): bleed off; "
        "deploy again over USB" % d.bundle.folder
    )
    seen: set[int] = set()
    deadline = time.monotonic() + 10
    while seen != {0, 3} and time.monotonic() < deadline:  # red+green together, 2 Hz
        st = _status(vb)
        if st.get("safe"):
            assert st["duty"] == 0
            seen.add(st["led"])
        time.sleep(0.03)
    assert seen == {0, 3}
    # USB still works: a deploy brings it back
    again = deploy(hil_board)
    assert "stringcare_entry.py" in again.copied
    assert again.banner.startswith("stringcare: module ")


def test_a_board_deployed_before_staged_installs_is_converted(hil_board: Any) -> None:
    vb = _vb(hil_board)
    b = bundle_mod.build(REPO, "unix_module")
    for path in b.files:  # the flat layout of earlier deploys: files in place, entry as main.py
        if path in (fwstore.LOADER, fwstore.BOOT):  # the staged install's own
            continue
        dst = vb.flash_dir / ("main.py" if path == "stringcare_entry.py" else path)
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.write_bytes(b.data(path))
    start = len(vb.console)
    vb.power_cycle()
    assert _boot_lines(vb, start)[0].startswith("stringcare: module ")
    d = deploy(hil_board)
    assert sorted(d.removed) == ["boards", "module_fw", "shared", "stringcare_bundle.py"]
    assert sorted(p.name for p in vb.flash_dir.iterdir()) == [
        "b", "boot.py", "main.py", "stringcare_active", "stringcare_settings.py",
        "stringcare_trust",
    ]  # fmt: skip
    assert d.boot_line == "stringcare: boot: bundle %s" % d.bundle.folder


@pytest.mark.vboard(emulate={"no_hashlib": True})
def test_a_board_without_hashlib_installs_checks_and_boots_on_the_python_sha256(
    hil_board: Any, tmp_path: Path
) -> None:
    # the stock NUCLEO_G474RE image before MicroPython 1.27 has no hashlib: deploy, the
    # board's check, the loader and the module's MACs run on shared/sha256.py
    vb = _vb(hil_board)
    said: list[str] = []
    first = Deployer(REPO, "unix_module", hil_board.device, address=5, bus=hil_board.bus_url,
                     progress=said.append).run()  # fmt: skip
    assert any("no hashlib in this MicroPython image" in s for s in said), said
    assert first.boot_line == "stringcare: boot: bundle %s" % first.bundle.folder
    assert first.discovered is not None and first.discovered["address"] == 5
    # a second bundle is checked by the first one's installer, then the first one
    # damaged: the loader's Python SHA-256 finds it and falls back
    new = Deployer(REPO, None, hil_board.device, bundle_dir=_signed(tmp_path, "n", "n").out_dir,
                   progress=lambda t: None).run()  # fmt: skip
    assert new.boot_line == "stringcare: boot: bundle %s" % new.bundle.folder
    core = vb.flash_dir / new.bundle.folder / "module_fw/core.mpy"
    core.write_bytes(core.read_bytes()[:-1] + b"\x01")
    start = len(vb.console)
    vb.power_cycle()
    lines = _boot_lines(vb, start)
    assert lines[0] == "stringcare: boot: bundle %s; skipped %s: module_fw/core.mpy damaged" % (
        first.bundle.folder,
        new.bundle.folder,
    )
