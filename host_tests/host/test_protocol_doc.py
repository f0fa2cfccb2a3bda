"""docs/protocol.md is the contract: its payload tables must equal the codec's layout
table, and the committed vectors must be what the reference encoder produces."""

from __future__ import annotations

import re

from host_support import REPO

from shared import protocol as p
from shared import protocol_layouts as lay
from stringcare.dev import protocol_vectors

DOC = (REPO / "docs" / "protocol.md").read_text()
ROW = r"^\| (\d+) \| (\w+) \| (u8|u16|i16|u24|u32|i32|ctr|uid|mac|key) \|"


def doc_layouts() -> dict[tuple[int, bool], str]:
    out: dict[tuple[int, bool], str] = {}
    sections = re.split(r"^### ", DOC, flags=re.M)[1:]
    for sec in sections:
        head = sec.splitlines()[0]
        codes = [int(c, 16) for c in re.findall(r"0x([0-9A-F]{2})", head)]
        if not codes:
            continue
        parts = re.split(r"^(Request payload|Reply payload)", sec, flags=re.M)
        for i in range(1, len(parts), 2):
            reply = parts[i] == "Reply payload"
            body = parts[i + 1]
            rows = re.findall(ROW, body, re.M)
            first_line = body.splitlines()[0]
            if rows:
                spec = " ".join("%s:%s" % (f, t) for _o, f, t in rows)
            elif "MEAS layout" in first_line:
                spec = lay.MEAS
            elif "none" in first_line:
                spec = ""
            else:
                raise AssertionError("cannot read payload of %s: %r" % (head, first_line))
            for code in codes:
                out[(code, reply)] = spec
    return out


def test_doc_tables_equal_the_codec_layouts():
    documented = doc_layouts()
    assert documented == lay.LAYOUTS


def test_doc_offsets_are_consecutive():
    for sec in re.split(r"^### ", DOC, flags=re.M)[1:]:
        for body in re.split(r"^(?:Request|Reply) payload", sec, flags=re.M)[1:]:
            rows = re.findall(ROW, body, re.M)
            off = 0
            for o, _f, t in rows:
                assert int(o) == off, sec.splitlines()[0]
                off += lay.SIZES[t]


def test_every_command_is_documented_and_named():
    for code, name in lay.COMMAND_NAMES.items():
        assert re.search(r"^### .*0x%02X %s" % (code, name), DOC, re.M), name
        assert "| 0x%02X | %s |" % (code, name) in DOC


def test_committed_vectors_are_current():
    path = REPO / "docs" / "protocol-vectors.json"
    assert path.read_text() == protocol_vectors.render(), (
        "run: python -m stringcare.dev.protocol_vectors --write"
    )


def test_doc_cycle_table_matches_the_formula():
    def cycle_s(sizes: list[int], baud: int) -> float:
        t = 0
        for n in sizes:
            t += p.wire_us(p.OVERHEAD + p.SET_TARGET_FIELDS + p.AUTH_LEN, baud)
            t += p.wire_us(2, baud)
            while n > 0:
                c = min(n, 64)
                t += p.wire_us(13, baud) + p.group_slot_start_us(c, baud)
                n -= c
        return t / 1e6

    row = re.search(r"^\| 600 \(10 × 60\) \|(.*)$", DOC, re.M)
    assert row
    cells = [c.strip().strip("*").removesuffix(" s") for c in row.group(1).split("|")[:6]]
    for cell, baud in zip(cells, (9600, 19200, 57600, 115200, 230400, 460800), strict=True):
        want = cycle_s([60] * 10, baud)
        assert abs(float(cell) - want) / want < 0.006, (baud, cell, want)
    assert cycle_s([60] * 10, 115200) <= 1.0  # the goal
