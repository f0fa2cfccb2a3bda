# ruff: noqa: F821  (module is a MicroPython manifest function)
# Included by every role's manifest.py: freezes exactly what the role's bundle carries
# for the board STRINGCARE_BOARD - the modules its entry and the board's hal.py import,
# followed through the project (stringcare.bundle.frozen_sources), plus the installer
# that checks new bundles.  So a module image holds no manager, history or threshold
# code, and a converter no measurement code; a new import is frozen without editing
# any list.  Runs in the CPython of MicroPython's build (makemanifest.py).
import os
import sys

_ROOT = os.environ["STRINGCARE_ROOT"]
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "tools")]
from stringcare.bundle import frozen_sources, library_sources  # noqa: E402

for _path in frozen_sources(_ROOT, os.environ["STRINGCARE_BOARD"]):
    module(_path, base_path=_ROOT)
# libraries from the build's Python (microdot for the manager's web interface): run
# MicroPython's make with the StringCare venv's python (`make ... PYTHON=.venv/bin/python`)
for _site, _path in library_sources(_ROOT, os.environ["STRINGCARE_BOARD"]):
    module(_path, base_path=str(_site))
