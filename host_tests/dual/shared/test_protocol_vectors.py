# docs/protocol-vectors.json (made by an independent reference encoder) against the
# firmware codec, on both interpreters.  The file holds one vector per line so that a
# 64 KB MicroPython heap can read it a line at a time.
import json

from shared import protocol as p
from shared import protocol_layouts as lay

PATH = "docs/protocol-vectors.json"


def each_vector():
    with open(PATH) as f:
        for line in f:
            line = line.strip()
            if line.startswith('{"') and '"hex"' in line:
                if line.endswith(","):
                    line = line[:-1]
                yield json.loads(line)


def frames_of(data):
    d = p.Deframer()
    out = []
    pos = 0
    while pos < len(data):
        pos += d.feed(data, pos, len(data))
        f = d.poll()
        while f is not None:
            out.append((f.dst, f.src, f.cmd, f.seq, f.payload()))
            f = d.poll()
    d.idle()
    f = d.poll()
    while f is not None:
        out.append((f.dst, f.src, f.cmd, f.seq, f.payload()))
        f = d.poll()
    return out, d


def test_crc_parameters_and_check_value():
    with open(PATH) as f:
        head = f.readline()
    crc = json.loads(head[: head.index(', "vectors"')] + "}")["crc"]
    assert crc == {"width": 16, "poly": 0x1021, "init": 0xFFFF, "refin": False,
                   "refout": False, "xorout": 0, "check": 0x29B1}  # fmt: skip
    assert p.crc16(b"123456789", 0, 9) == crc["check"]


def test_every_valid_vector_decodes_to_its_fields_and_reencodes():
    n = 0
    for v in each_vector():
        if not v["valid"] or v.get("stream") or "outcome" in v:
            continue
        data = bytes.fromhex(v["hex"])
        frames, d = frames_of(data)
        assert len(frames) == 1, v["name"]
        dst, src, cmd, seq, payload = frames[0]
        want = v["fields"]
        assert (dst, src, cmd, seq) == (want["dst"], want["src"], want["cmd"], want["seq"]), v[
            "name"
        ]
        if "decoded" in v:  # MEAS: the bit fields of volt_temp
            assert p.meas_voltage_uv(data, 8) == v["decoded"]["voltage_uv"], v["name"]
            assert p.meas_temp_mc(data, 8) == v["decoded"]["temp_mc"], v["name"]
        if "payload" in want:
            reply = bool(cmd & p.REPLY) and cmd != p.CMD_NAK or cmd == p.CMD_NAK
            base = cmd if cmd == p.CMD_NAK else cmd & 0x7F
            got = lay.unpack(base, reply, payload, 0, len(payload))
            assert got == want["payload"], v["name"]
            again = p.encode_bytes(dst, src, cmd, seq, lay.pack(base, reply, got))
            assert again == data, v["name"]
        n += 1
    assert n >= 47  # every command's request and reply, NAK, and the two length cases


def test_every_command_of_the_layout_table_has_vectors():
    names = []
    for v in each_vector():
        names.append(v["name"])
    for code, name in lay.COMMAND_NAMES.items():
        if code == p.CMD_NAK:
            continue
        assert "%s request" % name in names, name
        if lay.layout(code, True) is not None:
            assert "%s reply" % name in names, name


def test_invalid_vectors_yield_no_frame_for_the_stated_reason():
    seen = []
    for v in each_vector():
        if v["valid"]:
            continue
        frames, d = frames_of(bytes.fromhex(v["hex"]))
        assert frames == [], v["name"]
        err = v["error"]
        seen.append(err)
        if err == "crc":
            assert d.crc_errors == 1, v["name"]
        elif err == "version":
            assert d.version_errors == 1 and d.crc_errors == 0, v["name"]
        else:
            assert d.garbage > 0 and d.crc_errors == 0, v["name"]
    for err in ("crc", "version", "garbage", "truncated"):
        assert err in seen


def test_length_and_command_errors_are_for_the_receiver_to_answer():
    from module_fw.responder import Responder
    from module_fw.state import ModuleState

    s = ModuleState(b"\x5c\xa1\xab\x1e\x00\xc0\xff\xee", 3)
    s.address = 17
    r = Responder(s)
    checked = 0
    for v in each_vector():
        if v.get("error") in ("bad_length", "unknown_command"):
            frame = p.decode_frame(bytes.fromhex(v["hex"]))
            n = r.handle(frame, 0)
            nak = p.decode_frame(bytes(r.tx[:n]))
            assert nak.cmd == p.CMD_NAK
            code = p.ERR_BAD_LENGTH if v["error"] == "bad_length" else p.ERR_UNKNOWN_COMMAND
            assert nak.u8(1) == code
            checked += 1
    assert checked == 2


def test_authentication_and_edge_vectors_against_a_module():
    from module_fw.responder import Responder
    from module_fw.state import ModuleState
    from shared import auth

    checked = 0
    for v in each_vector():
        if "outcome" not in v or v["module"] >= 0xF000:  # relay box: test_relaybox.py
            continue
        s = ModuleState(b"\x5c\xa1\xab\x1e\x00\xc0\xff\xee", 3)
        s.address = v["module"]
        s.key = bytes.fromhex(v["key"])
        s.target_min_uv = 12600000
        s.target_max_uv = 14700000
        s.ctr_hi, s.ctr_lo = v["floor"] >> 24, v["floor"] & 0xFFFFFF
        r = Responder(s)
        frames = []
        d = p.Deframer()
        data = bytes.fromhex(v["hex"])
        d.feed(data)
        f = d.poll()
        assert f is not None, v["name"]
        cal_before = s.cal_offset[3]
        n = r.handle(f, 0)
        out = v["outcome"]
        if v["nak"] > 0:
            nak = p.decode_frame(bytes(r.tx[:n]))
            assert nak.cmd == p.CMD_NAK and nak.u8(1) == v["nak"], v["name"]
        elif v["nak"] == 0:
            rep = p.decode_frame(bytes(r.tx[:n]))
            assert rep.cmd == f.cmd | p.REPLY, v["name"]
        else:
            assert n == 0, v["name"]
        if out == "accepted":
            assert s.cal_offset[3] == 1500 and s.auth_refused == 0
            assert (s.ctr_hi << 24 | s.ctr_lo) == 0x10001
        elif out in ("replayed", "bad_mac"):
            assert s.auth_refused == 1 and s.cal_offset[3] == cal_before, v["name"]
            assert s.address == v["module"], v["name"]
        else:
            assert s.auth_refused == 0 and s.cal_offset[3] == cal_before, v["name"]
        frames.append(f)
        checked += 1
    assert checked == 8
    assert auth  # imported: the module's verifier is what ran


def test_stream_vector():
    for v in each_vector():
        if v.get("stream"):
            frames, _ = frames_of(bytes.fromhex(v["hex"]))
            assert len(frames) == v["frames"]
            assert [(f[0], f[2]) for f in frames] == [(17, p.CMD_READ_MEAS), (3, p.CMD_INFO)]
