"""Storage faults with the real history store (too large for the dual tests' 192 KB
heap next to the core), the Linux manager's store files and `stringcare history info`
(docs/history.md, "When storage fails")."""

from __future__ import annotations

import os
import struct
import time
from pathlib import Path

from corefixture import Site
from faultdev import EIO, ENOSPC, EROFS, FailingDevice

from manager_fw import events as ev
from manager_fw import store_faults as co  # STORE_* health
from manager_fw.blockdev import FileBlockDevice
from manager_fw.core import ManagerCore
from manager_fw.history_store import HistoryReader, HistoryWriter
from manager_fw.ring import RING_HISTORY
from manager_fw.ring_file import open_file_store
from shared.protocol_frame import crc16
from stringcare.cli import main
from stringcare_host.transport import SIM_SITE_KEY


def test_history_store_fails_with_eio_enospc_erofs_and_monitoring_goes_on() -> None:
    site = Site(sizes=(3,), history_kb=64, events_kb=16)
    site.start()
    c = site.core
    assert c.history is not None
    dev = FailingDevice(site.history_dev)
    c.history.ring.device = dev
    site.run_s(60)
    kept = [s.time_s for s in HistoryReader(site.history_dev).snapshots()]
    assert len(kept) == 1
    for errno in (EIO, ENOSPC, EROFS):
        dev.fail_after(7, errno, persistent=True)
        site.run_s(1200)
        assert c.store_health[ev.STORE_HISTORY] == co.STORE_DEGRADED
        assert c.mode_name() == "running" and c.warning_total() >= 1
        dev.heal()
        site.run_s(1300)  # past the back-off: the next snapshot is written
        assert c.store_health[ev.STORE_HISTORY] == co.STORE_OK
    got = [(e[5], e[4]) for e in site.events(ev.EV_STORAGE)]
    assert got[0::2] == [(ev.STORAGE_WRITE_FAILED, n) for n in (EIO, ENOSPC, EROFS)], got
    assert [a for a, _v in got[1::2]] == [ev.STORAGE_RECOVERED] * 3
    reader = HistoryReader(site.history_dev)
    times = [s.time_s for s in reader.snapshots()]
    assert reader.problems == [] and times[0] == kept[0] and len(times) == 4


def test_damaged_segment_headers_are_reported_when_the_core_opens_the_store(tmp_path) -> None:
    path = str(tmp_path / "h.bin")
    dev = FileBlockDevice(path, 64 * 1024)
    w = HistoryWriter(dev, [3], segment_size=8192)
    k = 0
    while w.ring.segments_started < 3:
        w.append(k, 0, [13000000] * 3, [22000] * 3, [0] * 3, [0] * 3, [0] * 3, [-8388608])
        k += 1
    dev.close()
    with open(path, "r+b") as f:  # a bit flip in the second segment's header
        f.seek(8192 + 14)
        b = f.read(1)[0]
        f.seek(8192 + 14)
        f.write(bytes([b ^ 0x10]))
    site = Site(sizes=(3,))
    c = ManagerCore(site.cfg, FileBlockDevice(path, 64 * 1024), None, 0,
                    history_segment_size=8192, event_log=site.event_list)  # fmt: skip
    assert c.store_health[ev.STORE_HISTORY] == co.STORE_OK
    assert [e[1:] for e in site.event_list.items if e[1] == ev.EV_STORAGE] == [
        (ev.EV_STORAGE, 0xFFFF, 0xFF, 1, ev.STORAGE_DAMAGED, ev.STORE_HISTORY)
    ]
    assert any("damaged header" in p and "0x2000" in p for p in c.problems), c.problems


def test_open_file_store_sets_a_foreign_store_aside_and_reports_what_cannot_be_opened(
    tmp_path: Path,
) -> None:
    path = tmp_path / "history.bin"
    w = HistoryWriter(FileBlockDevice(str(path), 128 * 1024), [2], segment_size=32768)
    w.append(1, 0, [13000000] * 2, [22000] * 2, [0] * 2, [0] * 2, [0] * 2, [-8388608])
    w.ring.device.close()
    dev, fault = open_file_store(str(path), 256 * 1024, RING_HISTORY, 65536)
    assert dev is not None and isinstance(fault, str)
    assert "history.bin.foreign" in fault and "4 segments of 32768 bytes" in fault, fault
    kept = HistoryReader(FileBlockDevice(str(path) + ".foreign", readonly=True))
    assert len(list(kept.snapshots())) == 1  # the copied records are kept, readable
    HistoryWriter(dev, [2], segment_size=65536)  # the new store opens
    dev.close()
    # a full disk at the first start: the file cannot be filled
    full = tmp_path / "full.bin"
    full.symlink_to("/dev/full")
    dev, fault = open_file_store(str(full), 64 * 1024, RING_HISTORY, 8192)
    assert dev is None and isinstance(fault, OSError) and fault.errno == ENOSPC
    # a data folder that cannot exist (a file is in the way)
    (tmp_path / "afile").write_text("x")
    dev, fault = open_file_store(str(tmp_path / "afile" / "h.bin"), 64 * 1024, RING_HISTORY, 8192)
    assert dev is None and isinstance(fault, OSError)


def test_linux_manager_starts_and_reports_when_its_store_files_fail(tmp_path: Path) -> None:
    from boards.linux_manager.shell import LinuxManager
    from manager_fw.config import ConfigStore
    from module_fw.state import ModuleState
    from stringcare_host.transport import SimTransport

    data = tmp_path / "data"
    data.mkdir()
    (data / "history.bin").symlink_to("/dev/full")  # ENOSPC when the file is made
    w = HistoryWriter(FileBlockDevice(str(data / "events.bin"), 64 * 1024), [2], 8192)
    w.append(1, 0, [13000000] * 2, [22000] * 2, [0] * 2, [0] * 2, [0] * 2, [-8388608])
    w.ring.device.close()  # events.bin holds a history store: set aside
    site = tmp_path / "site.json"
    site.write_text('{"strings": [{"modules": 2}]}')
    store = ConfigStore(str(site))
    cfg = store.load()
    mods = []
    for i in range(2):
        s = ModuleState(bytes([1, 2, 3, 4, 5, 6, 7, i]), variant_id=3)
        s.address = i + 1
        s.voltage_uv = 13500000
        s.key = SIM_SITE_KEY  # the simulated bus's site key
        mods.append(s)
    mgr = LinuxManager(cfg, SimTransport(mods), data, config_store=store)
    try:
        core = mgr.core
        assert core.store_health_name(ev.STORE_HISTORY) == "unavailable"
        assert "ENOSPC" in core.store_problem[ev.STORE_HISTORY]
        assert core.store_health_name(ev.STORE_EVENTS) == "ok"
        assert "events.bin.foreign" in core.store_problem[ev.STORE_EVENTS]
        end = time.monotonic() + 20
        while core.mode_name() != "running" and time.monotonic() < end:
            mgr.step()
        assert core.mode_name() == "running"
        snap = mgr.snapshot()
        assert snap["storage"]["history"]["state"] == "unavailable"
        assert snap["storage"]["events"]["state"] == "ok"
        assert len(snap["problems"]) == 2 and snap["warnings"] >= 1
        codes = [(e.code, e.arg, e.extra, e.value) for e in mgr.events.recorded]
        assert (ev.EV_STORAGE, ev.STORAGE_OPEN_FAILED, ev.STORE_HISTORY, ENOSPC) in codes
        assert (ev.EV_STORAGE, ev.STORAGE_FOREIGN, ev.STORE_EVENTS, 0) in codes
        assert any(c[0] == ev.EV_CONFIG and c[1] == ev.CFG_LOADED for c in codes)
        assert any("history store" in e["text"] for e in mgr.log), mgr.log
    finally:
        mgr.close()


def test_history_info_refuses_a_forged_segment_count_at_once(tmp_path: Path, capsys) -> None:
    path = tmp_path / "forged.bin"
    w = HistoryWriter(FileBlockDevice(str(path), 64 * 1024), [2], segment_size=8192)
    w.append(1, 0, [13000000] * 2, [22000] * 2, [0] * 2, [0] * 2, [0] * 2, [-8388608])
    w.ring.device.close()
    raw = bytearray(path.read_bytes())
    struct.pack_into("<I", raw, 8 + 16, 0xFFFFFFF0)  # segment count
    struct.pack_into("<H", raw, 28, crc16(raw, 1, 28))
    path.write_bytes(bytes(raw))
    t0 = time.monotonic()
    code = main(["history", "info", str(path)])
    err = capsys.readouterr().err
    assert time.monotonic() - t0 < 5
    assert code != 0 and "impossible geometry" in err and "4294967280" in err, err
    # a bit flip in a segment header: reported as damage, the rest is read
    w = HistoryWriter(FileBlockDevice(str(path), 64 * 1024, ), [2], segment_size=8192,
                      erase_foreign=True)  # fmt: skip
    t = 0
    while w.ring.segments_started < 3:
        w.append(t, 0, [13000000] * 2, [22000] * 2, [0] * 2, [0] * 2, [0] * 2, [-8388608])
        t += 1
    w.ring.device.close()
    with open(path, "r+b") as f:
        f.seek(8192 + 20)
        b = f.read(1)[0]
        f.seek(8192 + 20)
        f.write(bytes([b ^ 1]))
    code = main(["history", "info", str(path)])
    out = capsys.readouterr()
    assert code == 2 and "damaged header" in out.err and "0x2000" in out.err, out
    assert os.path.getsize(path) == 64 * 1024


def _modules(n: int) -> list:
    from module_fw.state import ModuleState

    mods = []
    for i in range(n):
        s = ModuleState(bytes([1, 2, 3, 4, 5, 6, 7, i]), variant_id=3)
        s.address = i + 1
        s.voltage_uv = 13500000
        s.key = SIM_SITE_KEY  # the simulated bus's site key
        mods.append(s)
    return mods


def test_a_bad_site_json_falls_back_with_an_event_and_a_warning_on_both_managers(
    tmp_path: Path,
) -> None:
    from boards.linux_manager.shell import LinuxManager
    from manager_fw import main as board_main
    from manager_fw.config import ConfigStore, OsFiles
    from stringcare_host.transport import SimTransport

    site = tmp_path / "site.json"
    ConfigStore(str(site)).save({"site": "good", "strings": [{"modules": 2}]})
    site.write_bytes(b'{"site": "caf\xe9", "strings": [{"modules": 2}]}')  # not UTF-8
    # the Linux manager
    store = ConfigStore(str(site))
    cfg = store.load()
    mgr = LinuxManager(cfg, SimTransport(_modules(2)), tmp_path / "data", config_store=store)
    try:
        codes = [(e.code, e.arg) for e in mgr.events.recorded]
        assert (ev.EV_CONFIG, ev.CFG_FALLBACK) in codes
        problems = mgr.snapshot()["problems"]
        assert any("not UTF-8" in p and "offset 13" in p for p in problems), problems
        assert any("last good configuration from" in p for p in problems), problems
        assert mgr.snapshot()["warnings"] >= 1 and mgr.core.cfg.site == "good"
    finally:
        mgr.close()

    # a board manager (Pico W, unix_manager): manager_fw/main.make_core with its HAL
    class Hal:
        config_files = OsFiles()
        history_device = None
        event_device = None
        store_faults = (None, None)

        def now_s(self) -> int:
            return 200000000

    import os

    here = os.getcwd()
    os.chdir(tmp_path)
    try:
        core = board_main.make_core(Hal())
    finally:
        os.chdir(here)
    assert core.cfg.site == "good"
    assert any("not UTF-8" in p for p in core.problems) and core.warning_total() >= 1
