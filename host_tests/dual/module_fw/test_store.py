# module_fw/store: persistence of address, variant, calibration and counters; power
# cuts at every byte of a write; corrupt or missing stores start with defaults.
from module_fw import state as st
from module_fw import store as sto


def configured():
    s = st.ModuleState(b"abcdefgh", 3)
    s.address = 42
    s.variant_id = 4
    s.ri_method = 2
    s.baud = 230400
    s.cal_offset[0] = -1520
    s.cal_gain_ppm[0] = 2310
    s.cal_offset[4] = 250
    return s


def test_save_and_load_roundtrip():
    slots = sto.MemorySlots()
    a = sto.Store(slots)
    s = configured()
    a.counters.boot_count = 7
    a.counters.bleed_s = 123456
    assert a.save(s)
    fresh = st.ModuleState(b"abcdefgh", 0)
    b = sto.Store(slots)
    assert b.load(fresh) == sto.STORE_OK
    assert (fresh.address, fresh.variant_id, fresh.ri_method, fresh.baud) == (42, 4, 2, 230400)
    assert list(fresh.cal_offset) == [-1520, 0, 0, 0, 250]
    assert fresh.cal_gain_ppm[0] == 2310
    assert b.counters.boot_count == 7 and b.counters.bleed_s == 123456
    assert fresh.store_flags == 0


def test_missing_store_starts_unaddressed_with_defaults_and_says_so():
    s = st.ModuleState(b"abcdefgh", 3)
    s.address = 9  # whatever was in RAM
    assert sto.Store(sto.MemorySlots()).load(s) == sto.STORE_MISSING
    assert s.address == 0 and s.store_flags == sto.STORE_MISSING


def test_corrupt_store_starts_with_defaults_never_raises():
    slots = sto.MemorySlots()
    slots.data = [b"\xff" * 70, b"garbage"]
    s = st.ModuleState(b"abcdefgh", 3)
    assert sto.Store(slots).load(s) == sto.STORE_CORRUPT
    assert s.address == 0 and s.store_flags == sto.STORE_CORRUPT
    # values out of range with a correct CRC are corrupt too
    good = sto.Store(sto.MemorySlots())
    x = configured()
    good.save(x)
    rec = bytearray(good.slots.data[0])
    rec[9] = 9  # variant 9 does not exist
    from shared import protocol as p

    p.put_u16(rec, 68, p.crc16(rec, 0, 68))
    slots.data = [bytes(rec), None]
    assert sto.Store(slots).load(s) == sto.STORE_CORRUPT


def test_power_cut_at_every_byte_keeps_the_previous_settings():
    for cut in range(0, sto.RECORD_LEN):
        slots = sto.MemorySlots()
        store = sto.Store(slots)
        s = configured()
        store.save(s)  # slot 0, address 42
        s.address = 43
        store.save(s)  # slot 1, address 43
        s.address = 44
        slots.cut_after = cut
        assert not store.save(s)  # power cut while writing slot 0
        after = st.ModuleState(b"abcdefgh", 0)
        assert sto.Store(slots).load(after) == sto.STORE_OK
        assert after.address == 43, cut  # the newest complete record survives
    # and when the write completes, the new value wins
    store.save(s)
    after = st.ModuleState(b"abcdefgh", 0)
    sto.Store(slots).load(after)
    assert after.address == 44


def test_sequence_numbers_wrap():
    assert sto.seq_newer(1, 0)
    assert sto.seq_newer(0, 0xFFFF)
    assert not sto.seq_newer(0xFFFF, 0)
    slots = sto.MemorySlots()
    store = sto.Store(slots)
    s = configured()
    store.seq = 0xFFFE
    for addr in (50, 51, 52):  # seq 0xFFFF, 0x0000, 0x0001
        s.address = addr
        store.save(s)
    after = st.ModuleState(b"abcdefgh", 0)
    sto.Store(slots).load(after)
    assert after.address == 52


def test_unwritable_store_is_reported_not_fatal():
    class Broken:
        def read(self, slot):
            raise OSError("no filesystem")

        def write(self, slot, data):
            raise OSError("read-only")

    s = configured()
    store = sto.Store(Broken())
    assert store.load(s) == sto.STORE_MISSING
    assert not store.save(s)
    assert s.store_flags == sto.STORE_UNWRITABLE


def test_file_slots_on_the_interpreters_filesystem():
    import os
    import sys

    try:
        os.mkdir("build")  # a fresh checkout has none before the first build
    except OSError:
        pass
    prefix = "build/test-store-%s" % sys.implementation.name
    slots = sto.FileSlots(prefix)
    for name in slots.names:
        try:
            os.remove(name)
        except OSError:
            pass
    store = sto.Store(slots)
    s = configured()
    assert store.load(s) == sto.STORE_MISSING
    s.address = 77
    assert store.save(s) and store.save(s)
    after = st.ModuleState(b"abcdefgh", 0)
    assert sto.Store(slots).load(after) == sto.STORE_OK and after.address == 77
    with open(slots.names[1], "wb") as f:  # the newer file truncated by a power cut
        f.write(b"SCMS\x01")
    after2 = st.ModuleState(b"abcdefgh", 0)
    assert sto.Store(slots).load(after2) == sto.STORE_OK and after2.address == 77
    for name in slots.names:
        os.remove(name)
