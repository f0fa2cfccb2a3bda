"""Which firmware functions MicroPython allocates a frame for at every call.

MicroPython keeps a bytecode function's frame (n_state words: its locals plus its value
stack, and 3 words per active ``try``/``with``) on the C stack only up to 11 words
(``VM_MAX_STATE_ON_STACK`` in py/objfun.c); a larger frame is taken from the heap at
every call and freed on return.  On the emulated Cortex-M0 such a call costs 1 900 to
8 000 instructions instead of ~800, depending on how long the allocator searches the heap
(docs/benchmarks.md, "Emulated Cortex-M0").  ``heap_locked`` tests cannot see it (a
locked heap makes MicroPython fall back to the C stack); ``micropython.mem_total()`` can.

This lists them, read from the compiled .mpy files with MicroPython's own
tools/mpy-tool.py (taken from the pinned release, as tools/m0/build.sh takes the port):

    .venv/bin/python tools/m0/frames.py MICROPYTHON_GIT_DIR [path.py ...]

Without paths, every deployable source.  Native and viper functions keep their frames on
the C stack and are not listed.  A developer's tool: nothing runs it in CI.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))

from stringcare.dev import layout  # noqa: E402

COMMIT = "e0e9fbb17ed6fd06bb76e266ae554784c9c80804"  # v1.28.0, as tools/m0/build.sh
ON_STACK_WORDS = 11
EXC_WORDS = 3  # an exception-stack entry: handler, value-stack pointer, previous


def _mpy_tool(src_git: str):
    out = ROOT / "build" / "m0" / "mpytool"
    tool = out / "tools" / "mpy-tool.py"
    if not tool.exists():
        out.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(
            ["git", "-C", src_git, "archive", "--format=tar", COMMIT, "tools/mpy-tool.py",
             "py/makeqstrdata.py"],
            check=True, capture_output=True,
        ).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(out)], input=tar, check=True)
    spec = importlib.util.spec_from_file_location("mpy_tool", tool)
    assert spec is not None and spec.loader is not None
    mt = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(out / "py"))  # its makeqstrdata
    argv = sys.argv
    sys.argv = ["mpy-tool.py"]  # it reads its own command line when imported
    try:
        spec.loader.exec_module(mt)
    finally:
        sys.argv = argv
    mt.config.MPZ_DIG_SIZE = 16
    mt.config.native_arch = mt.MP_NATIVE_ARCH_NONE
    mt.config.MICROPY_QSTR_BYTES_IN_LEN = 1
    mt.config.MICROPY_QSTR_BYTES_IN_HASH = 1
    mt.global_qstrs = mt.GlobalQStrList()
    return mt


def heap_frames(mt, mpy: Path) -> list[tuple[int, str]]:
    """(words, qualified name) of every bytecode function of mpy over the limit."""
    found: list[tuple[int, str]] = []

    def walk(rc, prefix: str) -> None:
        name = prefix + rc.simple_name.str
        if isinstance(rc, mt.RawCodeBytecode):
            n_state, n_exc = rc.prelude_signature[0], rc.prelude_signature[1]
            words = n_state + EXC_WORDS * n_exc
            if words > ON_STACK_WORDS:
                found.append((words, name))
        for child in rc.children:
            walk(child, name + ".")

    walk(mt.read_mpy(str(mpy)).raw_code, "")
    return found


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().split("\n\n")[2], file=sys.stderr)
        return 2
    sources = [ROOT / a for a in argv[1:]] or layout.deployable_sources(ROOT)
    tree = ROOT / "build" / "m0" / "frames"
    errors = layout.compile_mpy(ROOT, sources, tree, arch="armv6m")
    if errors:
        print("\n".join(errors), file=sys.stderr)
        return 1
    mt = _mpy_tool(argv[0])
    for src in sorted(sources):
        rel = src.resolve().relative_to(ROOT)
        for words, name in heap_frames(mt, tree / rel.with_suffix(".mpy")):
            print("%3d words  %s: %s" % (words, rel, name.replace("<module>.", "")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
