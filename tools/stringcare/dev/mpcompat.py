"""Static check: constructs in deployable code that MicroPython on a board cannot run.

mpy-cross catches syntax MicroPython cannot parse; this check catches what parses
fine and then fails (or silently differs) on a board: CPython-only modules
(typing, dataclasses, enum, abc, functools, ...), dataclass decorators, f-string
``=`` specifiers, ``from __future__`` imports, ``match`` statements, a handful of
CPython-only methods, and floats in the integer core (shared/).

Imports inside a ``try:`` whose handler catches ImportError are the documented shim
pattern (see shared/compat.py) and are not flagged.

Run as ``python -m stringcare.dev.mpcompat [--root DIR] [FILE...]``; exit 1 and one
``path:line: construct: what to do`` line per finding.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

from stringcare.dev import layout

# Modules MicroPython's rp2/stm32 ports (and the unix port used in tests) provide,
# under their plain and u-prefixed names.
MICROPYTHON_MODULES = frozenset(
    """
    array asyncio binascii bluetooth builtins cmath collections cryptolib deflate dht
    ds18x20 errno framebuf gc hashlib heapq io json machine math micropython mip
    neopixel network ntptime onewire os platform pyb random re requests rp2 select
    socket ssl stm struct sys time tls uarray uasyncio ubinascii ucollections uctypes
    uerrno uhashlib uheapq uio ujson umachine uos uplatform urandom ure uselect usocket
    ussl ustruct usys utime uzlib vfs zlib _thread
    """.split()
)
# Libraries a board image carries beside ours (frozen or bundled; docs/operator.md,
# "On the Pico W"): microdot, the web interface's server.
BUNDLED_LIBRARIES = frozenset(("microdot",))
# The project's packages, and the modules a deploy writes onto the board (the bundle's
# stamp, the settings and the one-shot provision: tools/stringcare/deploy.py).
PROJECT_PACKAGES = frozenset(
    layout.FIRMWARE_PACKAGES
    + ("boards", "firmware", "stringcare_bundle", "stringcare_settings", "stringcare_provision")
)

WHY_MODULE = {
    "typing": "MicroPython has no typing module at run time; annotate with builtin types "
    "(list[int]) or strings, which MicroPython ignores",
    "typing_extensions": "not available on MicroPython; annotate with builtin types",
    "dataclasses": "MicroPython has no dataclasses; write a plain class with __init__",
    "enum": "MicroPython has no enum; use const() integers",
    "abc": "MicroPython has no abc; use a plain base class whose methods raise NotImplementedError",
    "functools": "not on MicroPython boards; write the helper out",
    "itertools": "not on MicroPython boards; use a loop",
    "__future__": "MicroPython has no __future__ module; drop the import",
    "logging": "not on MicroPython boards; return events/status codes to the shell",
}

CPYTHON_ONLY_METHODS = {
    "bit_length": "int.bit_length is missing on MicroPython; compare against shifted constants",
    "bit_count": "int.bit_count is missing on MicroPython; count in a loop",
    "removeprefix": "str.removeprefix is missing on MicroPython; slice after startswith()",
    "removesuffix": "str.removesuffix is missing on MicroPython; slice after endswith()",
    "casefold": "str.casefold is missing on MicroPython; use lower()",
    "format_map": "str.format_map is missing on MicroPython; use %-formatting",
}

FLOAT_FREE_PACKAGES = ("shared",)


class Finding:
    def __init__(self, path: str, line: int, construct: str, advice: str) -> None:
        self.path = path
        self.line = line
        self.construct = construct
        self.advice = advice

    def __str__(self) -> str:
        return "%s:%d: %s: %s" % (self.path, self.line, self.construct, self.advice)


def _catches_import_error(node: ast.Try) -> bool:
    for handler in node.handlers:
        names: list[ast.expr] = []
        if isinstance(handler.type, ast.Tuple):
            names = list(handler.type.elts)
        elif handler.type is not None:
            names = [handler.type]
        for n in names:
            if isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError"):
                return True
    return False


def _fstring_self_documenting(text: str) -> bool:
    """True when an f-string's source text holds a ``{expr=}`` field."""
    i = 0
    while i < len(text) and text[i] not in "'\"":
        i += 1  # string prefix (f, rf, F, ...)
    quote = text[i : i + 3] if text[i : i + 3] in ('"""', "'''") else text[i : i + 1]
    body = text[i + len(quote) : len(text) - len(quote)]
    depth = 0
    i = 0
    while i < len(body):
        c = body[i]
        if depth == 0:
            if body.startswith("{{", i):
                i += 2
                continue
            if c == "{":
                depth = 1
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 1 and c == "=":
            prev = body[i - 1] if i else ""
            nxt = body[i + 1 : i + 2]
            if prev not in "=!<>" and nxt != "=" and body[i + 1 :].lstrip()[:1] in ("}", "!", ":"):
                return True
        elif depth == 1 and c in "!:" and body[i + 1 : i + 2] != "=":
            # conversion or format spec: the rest of this field cannot hold the '='
            close = body.find("}", i)
            if close < 0:
                return False
            depth = 0
            i = close
        i += 1
    return False


class _Checker(ast.NodeVisitor):
    def __init__(self, rel: str, source: str, float_free: bool) -> None:
        self.rel = rel
        self.source = source
        self.float_free = float_free
        self.findings: list[Finding] = []
        self._shim_depth = 0

    def add(self, node: ast.AST, construct: str, advice: str) -> None:
        self.findings.append(Finding(self.rel, getattr(node, "lineno", 0), construct, advice))

    def _check_module(self, node: ast.AST, name: str) -> None:
        top = name.split(".")[0]
        if top in PROJECT_PACKAGES:
            return
        if name == "collections.abc":
            self.add(node, "import collections.abc", "not on MicroPython; drop the ABC")
            return
        if top in MICROPYTHON_MODULES or top in BUNDLED_LIBRARIES:
            return
        if self._shim_depth:
            return
        why = WHY_MODULE.get(top) or (
            "CPython-only module: MicroPython boards do not have it; keep host-only code "
            "out of deployable folders or use a module MicroPython provides"
        )
        self.add(node, "import %s" % top, why)

    def visit_Try(self, node: ast.Try) -> None:
        if _catches_import_error(node):
            self._shim_depth += 1
            self.generic_visit(node)
            self._shim_depth -= 1
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._check_module(node, alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            if node.module == "__future__":
                self.add(node, "from __future__ import", WHY_MODULE["__future__"])
            else:
                self._check_module(node, node.module)

    def _decorators(self, node: ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef) -> None:
        for dec in node.decorator_list:
            target = dec.func if isinstance(dec, ast.Call) else dec
            name = ""
            if isinstance(target, ast.Name):
                name = target.id
            elif isinstance(target, ast.Attribute):
                name = target.attr
            if name == "dataclass":
                self.add(dec, "@dataclass", WHY_MODULE["dataclasses"])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._decorators(node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._decorators(node)
        self.generic_visit(node)

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._decorators(node)
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        text = ast.get_source_segment(self.source, node) or ""
        if _fstring_self_documenting(text):
            self.add(
                node,
                "f-string '=' specifier",
                "MicroPython boards do not support f'{x=}'; write f'x={x}'",
            )
        self.generic_visit(node)

    def visit_Match(self, node: ast.Match) -> None:
        self.add(node, "match statement", "MicroPython has no match; use if/elif")
        self.generic_visit(node)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        advice = CPYTHON_ONLY_METHODS.get(node.attr)
        if advice:
            self.add(node, ".%s" % node.attr, advice)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name):
            if node.func.id == "print" and any(k.arg == "flush" for k in node.keywords):
                self.add(node, "print(flush=...)", "MicroPython's print has no flush argument")
            if node.func.id == "float" and self.float_free:
                self.add(
                    node,
                    "float()",
                    "shared/ computes in integers with explicit units (µV, m°C, ms); "
                    "floats are single precision on the MCU",
                )
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if self.float_free and isinstance(node.value, float):
            self.add(
                node,
                "float literal %r" % node.value,
                "shared/ computes in integers with explicit units (µV, m°C, ms); "
                "floats are single precision on the MCU",
            )


def check_file(path: Path, root: Path) -> list[Finding]:
    try:
        rel = str(path.resolve().relative_to(root.resolve()))
    except ValueError:
        rel = str(path)
    source = path.read_text(encoding="utf-8")
    try:
        tree = ast.parse(source, filename=rel)
    except SyntaxError as exc:
        return [Finding(rel, exc.lineno or 0, "syntax error", str(exc.msg))]
    float_free = rel.split("/")[0] in FLOAT_FREE_PACKAGES
    checker = _Checker(rel, source, float_free)
    checker.visit(tree)
    return checker.findings


def check_tree(root: Path, files: list[Path] | None = None) -> list[Finding]:
    findings: list[Finding] = []
    for path in files if files is not None else layout.deployable_sources(root):
        findings.extend(check_file(path, root))
    return findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="checkout to check (default: this one)")
    parser.add_argument("files", nargs="*", type=Path)
    args = parser.parse_args(argv)
    root = Path(args.root).resolve() if args.root else layout.repo_root()
    findings = check_tree(root, args.files or None)
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
