"""The `make sim` status page in a real browser (headless Chromium, installed by the
Makefile when missing): every block appears with its values, and a screenshot is
kept at build/status-page.png to look at."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from host_support import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None and "CI" not in __import__("os").environ,
    reason="chromium is not installed (make test installs it)",
)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def running_sim(tmp_path_factory: pytest.TempPathFactory):
    tmp_path = tmp_path_factory.mktemp("browser")
    exe = str(Path(sys.executable).parent / "stringcare")
    proc = subprocess.Popen(
        [
            exe,
            "sim",
            "--scenario",
            "demo",
            "--duration",
            "2h",
            "--speed",
            "120x",
            "--serve",
            "127.0.0.1:0",  # any free port: the simulator prints the one it took
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    url = ""
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        hit = re.search(r"status page: (http://127\.0\.0\.1:\d+/)", line)
        if hit:
            url = hit.group(1)
            break
        if not line and proc.poll() is not None:
            pytest.fail("the simulator stopped before serving")
    assert url, "the simulator never printed its status page address"
    # wait until the manager runs and has a reading of every module (a deadline, not a
    # fixed sleep: a loaded machine simulates more slowly)
    deadline = time.monotonic() + 180
    while True:
        try:
            with urllib.request.urlopen(url + "api/status", timeout=10) as r:
                data = json.loads(r.read())
            mods = [m for s in data["strings"] for m in s["modules"]]
            if data["mode"] == "running" and mods and all(m["voltage_v"] for m in mods):
                break
        except (OSError, ValueError, KeyError):
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.terminate()
            pytest.fail("the simulator did not show every module polled within 180 s")
        time.sleep(0.5)
    yield url, tmp_path
    proc.terminate()
    proc.wait(timeout=30)


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM, "chromium is not installed: run `make test`, which installs it"
    return subprocess.run(
        [CHROMIUM, *FLAGS, "--user-data-dir=%s" % profile, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_status_page_shows_every_block_with_its_values(running_sim):
    url, tmp = running_sim
    dom = chromium("--virtual-time-budget=5000", "--dump-dom", url, profile=tmp / "p1").stdout
    assert 'data-ready="1"' in dom, dom[:2000]
    for k in (1, 2):
        assert 'id="string-%d"' % k in dom
    rows = re.findall(r'<tr class="module" data-label="(\d+)">(.*?)</tr>', dom, re.S)
    labels = sorted(int(label) for label, _ in rows)
    assert labels == list(range(1, 33))  # 2 strings x 16 blocks, every one
    for _label, cells in rows:
        volts = re.search(r'<td class="v">([\d.]+)</td>', cells)
        assert volts and 12.0 < float(volts.group(1)) < 16.0, cells
        assert re.search(r'class="chip (ok|warning|alarm-c)"', cells), cells
    assert re.search(r"Sum <b>\d+\.\d+ V</b>", dom)
    assert re.search(r"Current -?\d+\.\d+ A", dom)
    shot = REPO / "build" / "status-page.png"
    shot.parent.mkdir(exist_ok=True)
    chromium(
        "--virtual-time-budget=5000",
        "--window-size=1280,2200",
        "--screenshot=%s" % shot,
        url,
        profile=tmp / "p2",
    )
    assert shot.exists() and shot.stat().st_size > 20000


def test_status_api_is_json(running_sim):
    url, _ = running_sim
    with urllib.request.urlopen(url + "api/status", timeout=10) as r:
        data = json.loads(r.read())
    assert len(data["strings"]) == 2 and len(data["strings"][0]["modules"]) == 16
    assert data["mode"] == "running"
