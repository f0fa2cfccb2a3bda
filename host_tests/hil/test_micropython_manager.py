"""The manager firmware in MicroPython (firmware/manager/main.py, manager_fw/main.py,
the virtual unix_manager board) polling two virtual module boards that run the deployed
module firmware: every StringCare firmware role as MicroPython code on one bus."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from host_support import REPO

from stringcare.deploy import Deployer
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.vboard import BusHub, VirtualBoard


def test_micropython_manager_polls_micropython_modules(tmp_path: Path, hub: BusHub) -> None:
    boards = []
    try:
        for i, uv in enumerate((13520000, 13680000)):
            vb = VirtualBoard(
                tmp_path / ("flash%d" % i), "unix_module", bus=hub,
                env={"block_uv": uv, "uid": "53545247000003%02x" % i},
            ).start()  # fmt: skip
            boards.append(vb)
            Deployer(REPO, vb.board, vb.device, i + 1, None, hub.url, progress=lambda t: None,
                     site_key=bytes.fromhex(TEST_KEY_HEX)).run()  # fmt: skip
        run = tmp_path / "manager"
        run.mkdir()
        (run / "site_key.hex").write_text(TEST_KEY_HEX + "\n")  # the modules' key
        (run / "site.json").write_text(json.dumps({"site": "mp", "strings": [{"modules": 2}]}))
        board = json.loads((REPO / "boards/unix_manager/board.json").read_text())
        (run / "stringcare_bundle.py").write_text("BOARD = %r\n" % board)
        status = run / "status.json"
        env = dict(os.environ)
        env.update(
            MICROPYPATH="%s:%s" % (run, REPO),
            STRINGCARE_BUS=hub.url.removeprefix("socket://"),
            STRINGCARE_RUN_S="30",
            STRINGCARE_STATUS_FILE=str(status),
        )
        exe = str(Path(sys.executable).parent / "micropython")
        started = time.monotonic()
        proc = subprocess.run(
            [exe, "-X", "heapsize=1024k", str(REPO / "firmware/manager/main.py")],
            cwd=run, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert time.monotonic() - started >= 29  # it ran its course, no early exit
        snap = json.loads(status.read_text())
    finally:
        for vb in boards:
            vb.stop()
    assert "stringcare: manager started, 2 modules" in proc.stdout
    assert snap["mode"] == "running", snap
    (l1, ok1, uv1, _), (l2, ok2, uv2, _) = snap["modules"]
    assert ok1 and ok2
    assert abs(uv1 - 13520000) < 20000 and abs(uv2 - 13680000) < 20000
    assert abs(snap["strings"][0][0] - 13600) <= 20  # target: the average
    assert (run / "history.bin").exists() and (run / "events.bin").exists()


def test_micropython_manager_runs_on_a_foreign_store_and_a_bad_site_json(
    tmp_path: Path, hub: BusHub
) -> None:
    """The board path of issue 12's storage and configuration guarantees: a history.bin
    of another geometry is set aside (history.bin.foreign) and a new one started, a
    site.json with a non-UTF-8 byte falls back to site.json.bak; the manager polls and
    its status names both problems."""
    from manager_fw.blockdev import FileBlockDevice
    from manager_fw.config import ConfigStore
    from manager_fw.history_store import HistoryWriter

    boards = []
    try:
        vb = VirtualBoard(
            tmp_path / "flash0", "unix_module", bus=hub,
            env={"block_uv": 13600000, "uid": "5354524700000401"},
        ).start()  # fmt: skip
        boards.append(vb)
        Deployer(REPO, vb.board, vb.device, 1, None, hub.url, progress=lambda t: None).run()
        run = tmp_path / "manager"
        run.mkdir()
        ConfigStore(str(run / "site.json")).save({"site": "good", "strings": [{"modules": 1}]})
        (run / "site.json").write_bytes(b'{"site": "caf\xe9", "strings": [{"modules": 1}]}')
        w = HistoryWriter(FileBlockDevice(str(run / "history.bin"), 256 * 1024), [1], 32768)
        w.append(1, 0, [13000000], [22000], [0], [0], [0], [-8388608])
        w.ring.device.close()
        board = json.loads((REPO / "boards/unix_manager/board.json").read_text())
        (run / "stringcare_bundle.py").write_text("BOARD = %r\n" % board)
        status = run / "status.json"
        env = dict(os.environ)
        env.update(
            MICROPYPATH="%s:%s" % (run, REPO),
            STRINGCARE_BUS=hub.url.removeprefix("socket://"),
            STRINGCARE_RUN_S="15",
            STRINGCARE_STATUS_FILE=str(status),
        )
        exe = str(Path(sys.executable).parent / "micropython")
        proc = subprocess.run(
            [exe, "-X", "heapsize=1024k", str(REPO / "firmware/manager/main.py")],
            cwd=run, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        snap = json.loads(status.read_text())
    finally:
        for vb in boards:
            vb.stop()
    assert snap["mode"] == "running", snap
    assert snap["modules"][0][1], snap  # the module answers
    assert snap["storage"] == ["ok", "ok"], snap
    problems = " | ".join(snap["problems"])
    assert "history.bin.foreign" in problems and "not UTF-8" in problems, problems
    assert "last good configuration" in problems, problems
    assert (run / "history.bin.foreign").exists() and (run / "history.bin").exists()
