"""The manager firmware in MicroPython (firmware/manager/main.py, manager_fw/main.py,
the virtual unix_manager board) polling virtual module boards that run the deployed
module firmware: every StringCare firmware role as MicroPython code on one bus.  The
rig: hil/conftest.py `mp_manager`."""

from __future__ import annotations

from typing import Any

from hil_support import wait_for


def test_micropython_manager_polls_micropython_modules(mp_manager: Any) -> None:
    rig = mp_manager
    for i, uv in enumerate((13520000, 13680000)):
        rig.module(i + 1, {"block_uv": uv, "uid": "53545247000003%02x" % i})
    rig.site({"site": "mp", "strings": [{"modules": 2}]})
    rig.start()

    def polled() -> bool:
        snap = rig.status()
        if snap.get("mode") != "running" or not snap["strings"][0][0]:
            return False
        (_, ok1, uv1, _), (_, ok2, uv2, _) = snap["modules"]
        return bool(ok1 and ok2 and uv1 and uv2)

    wait_for("both modules polled and a target set:\n" + rig.output, polled, 90)
    assert rig.stop() == 0, rig.output  # it leaves cleanly
    snap = rig.status()
    assert "stringcare: manager started, 2 modules" in rig.output
    assert snap["mode"] == "running", snap
    (l1, ok1, uv1, _), (l2, ok2, uv2, _) = snap["modules"]
    assert ok1 and ok2
    assert abs(uv1 - 13520000) < 20000 and abs(uv2 - 13680000) < 20000
    assert abs(snap["strings"][0][0] - 13600) <= 20  # target: the average
    assert (rig.run / "history.bin").exists() and (rig.run / "events.bin").exists()


def test_micropython_manager_runs_on_a_foreign_store_and_a_bad_site_json(
    mp_manager: Any,
) -> None:
    """The board path of issue 12's storage and configuration guarantees: a history.bin
    of another geometry is set aside (history.bin.foreign) and a new one started, a
    site.json with a non-UTF-8 byte falls back to site.json.bak; the manager polls and
    its status names both problems."""
    from manager_fw.blockdev import FileBlockDevice
    from manager_fw.config import ConfigStore
    from manager_fw.history_store import HistoryWriter

    rig = mp_manager
    rig.module(1, {"block_uv": 13600000, "uid": "5354524700000401"})
    run = rig.site({"site": "good", "strings": [{"modules": 1}]})
    ConfigStore(str(run / "site.json")).save({"site": "good", "strings": [{"modules": 1}]})
    (run / "site.json").write_bytes(b'{"site": "caf\xe9", "strings": [{"modules": 1}]}')
    w = HistoryWriter(FileBlockDevice(str(run / "history.bin"), 256 * 1024), [1], 32768)
    w.append(1, 0, [13000000], [22000], [0], [0], [0], [-8388608])
    w.ring.device.close()
    rig.start()
    wait_for(
        "the module polled:\n" + rig.output,
        lambda: rig.status().get("mode") == "running" and rig.status()["modules"][0][1],
        90,
    )
    assert rig.stop() == 0, rig.output
    snap = rig.status()
    assert snap["mode"] == "running", snap
    assert snap["modules"][0][1], snap  # the module answers
    assert snap["storage"] == ["ok", "ok"], snap
    problems = " | ".join(snap["problems"])
    assert "history.bin.foreign" in problems and "not UTF-8" in problems, problems
    assert "last good configuration" in problems, problems
    assert (run / "history.bin.foreign").exists() and (run / "history.bin").exists()
