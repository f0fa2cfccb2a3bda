"""A deploy cut at any step leaves a board that boots the old or the new firmware.

One virtual board, the real mpremote and `stringcare deploy`, the real MicroPython:
tools/stringcare/deploycut.py cuts the power at each file boundary, in the middle of
files and at every step of the switch (the flash emulation stops the board at a chosen
flash operation, vboard_rom.py), powers the board up again and reads which bundle the
loader booted.  Here at every third place of the copy and at every step of the switch;
`make bench` (bench_deploy.py) at every place.  Virtual only: a real board's power is
not switched by the tests.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from host_support import REPO

from stringcare.deploycut import Campaign


@pytest.mark.timeout(900)
def test_a_deploy_cut_anywhere_boots_the_old_or_the_new_bundle(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if request.config.getoption("port", None):
        pytest.skip("cuts the power of a virtual board")
    camp = Campaign(REPO, tmp_path, progress=lambda t: None)
    # every third place of the file copy and every place of the switch (where old and
    # new meet); `make bench` cuts at all of them (deploy.interrupt_cases,
    # deploy.interrupt_recovered_pct, docs/benchmarks.md)
    cases = camp.run(sample=3)
    kinds = [c.label().split(" ")[0] for c in camp.planned]
    assert len(camp.planned) >= 20
    assert kinds.count("before") >= 20 and kinds.count("mid-write") >= 10
    assert any(c.switch for c in cases) and any(not c.switch for c in cases)
    assert any("stringcare_active" in c.what for c in cases), "cuts during the switch"
    assert {c.op for c in camp.planned if c.switch} <= {c.op for c in cases}
    for c in cases:
        # before the pointer's rename the old bundle runs, from it on the new one
        want = camp.old.folder if c.op <= camp.switch_op else camp.new.folder
        assert (c.booted, c.started) == (want, True), (c.op, c.label(), c.booted, c.deploy_error)
        assert c.deploy_error != "(completed: no cut)", c.label()
    assert camp.recovered() == len(cases)
    # a cut deploy run again resumes: the files already in the folder stay
    assert camp.resumed["kept"] > 0 and camp.resumed["copied"] > 0
    assert camp.resumed["boot_line"] == "stringcare: boot: bundle %s" % camp.new.folder


@pytest.mark.timeout(900)
def test_on_fat_a_deploy_cut_anywhere_boots_the_old_or_the_new_bundle(
    request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # FAT renames over a file in two steps (remove, rename): every cut between them too
    if request.config.getoption("port", None):
        pytest.skip("cuts the power of a virtual board")
    camp = Campaign(REPO, tmp_path, progress=lambda t: None, fat=True)
    cases = camp.run(sample=3)  # every place of the switch; `make bench` cuts everywhere
    assert len(camp.planned) >= 20
    between = [c for c in cases if c.what in ("rename stringcare_active.tmp stringcare_active",
                                              "rename main.py.tmp main.py")]  # fmt: skip
    assert len(between) == 2, [c.what for c in cases]  # the old file already removed
    for c in cases:
        want = camp.old.folder if c.op <= camp.switch_op else camp.new.folder
        assert (c.booted, c.started) == (want, True), (c.op, c.label(), c.booted, c.deploy_error)
    assert camp.recovered() == len(cases)
