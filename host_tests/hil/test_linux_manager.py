"""The Linux manager (boards/linux_manager, `stringcare manager`) polling real module
firmware: two virtual module boards (MicroPython unix port, firmware deployed with
mpremote) on a bus hub that pyserial reaches as socket://."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from host_support import REPO

from stringcare.deploy import Deployer
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.vboard import BusHub, VirtualBoard


def test_linux_manager_polls_deployed_module_firmware(tmp_path: Path, hub: BusHub) -> None:
    boards = []
    try:
        for i, uv in enumerate((13480000, 13720000)):
            vb = VirtualBoard(
                tmp_path / ("flash%d" % i),
                "unix_module",
                bus=hub,
                env={"block_uv": uv, "uid": "53545247000002%02x" % i},
            ).start()
            boards.append(vb)
            Deployer(REPO, vb.board, vb.device, i + 1, None, hub.url, progress=lambda t: None,
                     site_key=bytes.fromhex(TEST_KEY_HEX)).run()  # fmt: skip
        (tmp_path / "data").mkdir()
        (tmp_path / "data" / "site_key.hex").write_text(TEST_KEY_HEX + "\n")  # the modules' key
        site = tmp_path / "site.json"
        site.write_text(json.dumps({"site": "test bench", "strings": [{"modules": 2}]}))
        out = tmp_path / "status.json"
        exe = str(Path(sys.executable).parent / "stringcare")
        proc = subprocess.run(
            [exe, "manager", "--config", str(site), "--port", hub.url, "--duration", "30s",
             "--data", str(tmp_path / "data"), "--status-out", str(out)],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        snap = json.loads(out.read_text())
    finally:
        for vb in boards:
            vb.stop()
    assert snap["mode"] == "running", snap
    mods = snap["strings"][0]["modules"]
    assert [m["state"] for m in mods] == ["ok", "ok"]
    assert abs(mods[0]["voltage_v"] - 13.48) < 0.02 and abs(mods[1]["voltage_v"] - 13.72) < 0.02
    assert abs(snap["strings"][0]["target_v"] - 13.60) < 0.02  # (13.48 + 13.72) / 2
    assert "census" in proc.stdout and (tmp_path / "data" / "history.bin").exists()
