"""`stringcare deploy` end to end with the real mpremote, and every error it names."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import pytest
from host_support import REPO

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
