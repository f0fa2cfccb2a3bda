"""The freeze manifests (firmware/<role>/manifest.py) put into a MicroPython image
exactly what the role's bundle carries: its import closure and the installer.  A module
image holds no manager, history or threshold code."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest
from host_support import REPO

from stringcare import bundle

ROLES = {
    "module": ("rp2040_module", "stm32_module"),
    "manager": ("pico_w_manager",),
    "converter": ("rp2040_converter",),
    "iobox": ("rp2040_iobox",),
    "current": ("rp2040_current",),
}
MICROPYTHON_TOOLS = REPO / "build" / "m0" / "src" / "tools"  # when the M0 build fetched it


def run_manifest(path: Path, board: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Execute a manifest the way makemanifest.py does, recording what it freezes."""
    frozen: list[str] = []
    here = [path.parent]

    def include(manifest: str, **kw: Any) -> None:
        if manifest.startswith("$(PORT_DIR)"):
            return  # the port's own modules
        target = (here[-1] / manifest).resolve()
        here.append(target.parent)
        exec(compile(target.read_text(), str(target), "exec"), api())
        here.pop()

    def module(module_path: str, base_path: str = ".", opt: Any = None) -> None:
        assert (Path(base_path) / module_path).is_file(), module_path
        frozen.append(module_path)

    def package(*a: Any, **kw: Any) -> None:
        raise AssertionError("manifests freeze module by module (firmware/freeze.py)")

    def api() -> dict[str, Any]:
        return {"include": include, "module": module, "package": package}

    monkeypatch.setenv("STRINGCARE_ROOT", str(REPO))
    monkeypatch.setenv("STRINGCARE_BOARD", board)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(compile(path.read_text(), str(path), "exec"), api())
    return sorted(frozen)


@pytest.mark.parametrize("role, board", [(r, b) for r, bs in ROLES.items() for b in bs])
def test_each_role_freezes_its_bundle_and_nothing_else(
    role: str, board: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen = run_manifest(REPO / "firmware" / role / "manifest.py", board, monkeypatch)
    libraries = [path for _site, path in bundle.library_sources(REPO, board)]
    assert frozen == sorted(bundle.frozen_sources(REPO, board) + libraries)
    other_roles = {"module": "module_fw/", "manager": "manager_fw/"}
    for other, prefix in other_roles.items():
        if other != role:
            assert not [f for f in frozen if f.startswith(prefix)], (role, frozen)
    # nothing from another board's folder (boards/__init__.py and helpers beside the
    # board folders, like boards/rp2040_device.py, are shared)
    assert not [
        f for f in frozen if f.startswith("boards/") and board not in f and f.count("/") > 1
    ]
    if role != "manager":
        assert not [f for f in frozen if f.startswith(("shared/history", "shared/thresholds"))]


def test_the_manager_image_carries_its_web_interface_and_microdot() -> None:
    frozen = bundle.frozen_sources(REPO, "pico_w_manager")
    for needed in ("manager_fw/web/board.py", "manager_fw/web/app.py", "manager_fw/actions.py",
                   "manager_fw/web/module_history.py"):  # fmt: skip
        assert needed in frozen
    libraries = [path for _site, path in bundle.library_sources(REPO, "pico_w_manager")]
    assert libraries == ["microdot/__init__.py", "microdot/microdot.py", "microdot/sse.py",
                         "microdot/helpers.py"]  # fmt: skip
    assert bundle.library_sources(REPO, "rp2040_module") == []


def test_the_module_image_carries_its_measurement_code() -> None:
    frozen = bundle.frozen_sources(REPO, "rp2040_module")
    for needed in ("module_fw/core.py", "shared/measure.py", "shared/ri.py", "shared/balance.py"):
        assert needed in frozen
    # shared/ri.py imports its evaluators on first use (inside evaluator()): the
    # import closure must still find them
    for needed in ("ri_feed", "ri_step", "ri_arc", "ri_ac"):
        assert "shared/%s.py" % needed in frozen, needed


def test_the_manager_image_carries_the_split_config_and_ring_modules() -> None:
    """config.py and ring.py were split along their seams (issue 14): the parts are
    imported by the manager and must be frozen with it."""
    frozen = bundle.frozen_sources(REPO, "pico_w_manager")
    for needed in (
        "manager_fw/config.py",
        "manager_fw/config_schema.py",
        "manager_fw/config_levels.py",
        "manager_fw/config_store.py",
        "manager_fw/ring.py",
        "manager_fw/ring_reader.py",
    ):
        assert needed in frozen, needed


@pytest.mark.skipif(
    not (MICROPYTHON_TOOLS / "manifestfile.py").exists(),
    reason="MicroPython's tools/manifestfile.py is absent (the emulated M0 build fetches it)",
)
def test_micropythons_own_manifest_reader_agrees(tmp_path: Path) -> None:
    sys.path.insert(0, str(MICROPYTHON_TOOLS))
    try:
        import manifestfile  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(MICROPYTHON_TOOLS))
    port = tmp_path / "port"
    (port / "boards").mkdir(parents=True)
    (port / "boards" / "manifest.py").write_text("")
    os.environ["STRINGCARE_ROOT"] = str(REPO)
    os.environ["STRINGCARE_BOARD"] = "rp2040_module"
    try:
        m = manifestfile.ManifestFile(
            manifestfile.MODE_FREEZE,
            {"PORT_DIR": str(port), "MPY_DIR": str(tmp_path), "MPY_LIB_DIR": ""},
        )
        m.execute(str(REPO / "firmware" / "module" / "manifest.py"))
        targets = sorted(r.target_path for r in m.files())
    finally:
        del os.environ["STRINGCARE_ROOT"], os.environ["STRINGCARE_BOARD"]
    assert targets == bundle.frozen_sources(REPO, "rp2040_module")
