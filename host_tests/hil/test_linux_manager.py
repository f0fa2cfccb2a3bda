"""The Linux manager (boards/linux_manager, `stringcare manager`) polling real module
firmware: two virtual module boards (MicroPython unix port, firmware deployed with
mpremote) on a bus hub that pyserial reaches as socket:// (the shared manager rig,
hil/conftest.py)."""

from __future__ import annotations

import json
import re
import signal
import urllib.request
from typing import Any

from hil_support import wait_for

from stringcare.faults.rig import Rig


def test_linux_manager_polls_deployed_module_firmware(manager_rig: Rig) -> None:
    rig = manager_rig
    out = rig.workdir / "poll-status.json"
    m = rig.manager("poll", args=["--serve", "127.0.0.1:0", "--status-out", str(out)])
    try:
        found = wait_for(
            "the status page's address",
            lambda: re.search(r"status page (http://\S+/)", m.output()) or not m.alive(),
            60,
        )
        assert m.alive(), m.output()
        url = found.group(1) + "api/status"

        def status() -> dict[str, Any]:
            with urllib.request.urlopen(url, timeout=10) as r:
                return dict(json.loads(r.read()))

        def polled() -> bool:
            snap = status()
            if snap.get("mode") != "running" or not snap.get("strings"):
                return False
            mods = snap["strings"][0]["modules"]
            return [x["state"] for x in mods] == ["ok", "ok"] and bool(
                snap["strings"][0]["target_v"]
            )

        wait_for("both modules polled and a target set:\n" + m.output(), polled, 90)
    finally:
        m.signal(signal.SIGTERM)
        code = m.wait(20)
    assert code == 128 + signal.SIGTERM, m.output()
    snap = json.loads(out.read_text())  # --status-out: the last snapshot, on the way out
    assert snap["mode"] == "running", snap
    mods = snap["strings"][0]["modules"]
    assert [x["state"] for x in mods] == ["ok", "ok"]
    assert abs(mods[0]["voltage_v"] - 13.48) < 0.02 and abs(mods[1]["voltage_v"] - 13.72) < 0.02
    assert abs(snap["strings"][0]["target_v"] - 13.60) < 0.02  # (13.48 + 13.72) / 2
    assert "census" in m.output() and (rig.workdir / "poll-data" / "history.bin").exists()
