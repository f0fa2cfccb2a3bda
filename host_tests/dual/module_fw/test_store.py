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
    s.cal_offset[st.CAL_TEMPCO] = 23500
    s.cal_gain_ppm[st.CAL_TEMPCO] = -7300
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
    assert list(fresh.cal_offset) == [-1520, 0, 0, 0, 250, 23500]
    assert fresh.cal_gain_ppm[0] == 2310 and fresh.cal_gain_ppm[5] == -7300
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

    end = sto.RECORD_LEN - 2
    p.put_u16(rec, end, p.crc16(rec, 0, end))
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


def test_a_format_1_record_from_older_firmware_is_read_and_upgraded():
    from shared import protocol as p

    # the 70-byte record of firmware before the voltage tempco (5 channels)
    rec = bytearray(70)
    rec[0:4] = b"SCMS"
    rec[4] = 1
    p.put_u16(rec, 5, 300)  # seq
    p.put_u16(rec, 7, 17)  # address
    rec[9] = 3
    rec[10] = 1
    p.put_u32(rec, 12, 115200)
    for ch, (off, gain) in enumerate(((-900, 1500), (0, -2200), (0, 800), (-1200, 0), (300, 0))):
        p.put_i32(rec, 16 + 4 * ch, off)
        p.put_i32(rec, 36 + 4 * ch, gain)
    p.put_u32(rec, 56, 12)  # boot count
    p.put_u32(rec, 60, 3600)  # bleed seconds
    p.put_u16(rec, 64, 2)
    p.put_u16(rec, 66, 40)
    p.put_u16(rec, 68, p.crc16(rec, 0, 68))
    slots = sto.MemorySlots()
    slots.data = [bytes(rec), None]
    s = st.ModuleState(b"abcdefgh", 0)
    s.cal_offset[5] = 99  # whatever was in RAM
    store = sto.Store(slots)
    assert store.load(s) == sto.STORE_OK
    assert (s.address, s.variant_id, s.baud) == (17, 3, 115200)
    assert list(s.cal_offset) == [-900, 0, 0, -1200, 300, 0]
    assert list(s.cal_gain_ppm) == [1500, -2200, 800, 0, 0, 0]
    c = store.counters
    assert (c.boot_count, c.bleed_s, c.overtemp_events, c.ri_count) == (12, 3600, 2, 40)
    # the next save goes to the other slot in format 2; the old record stays intact
    assert store.save(s) and store.newest == 1
    assert slots.data[0] == bytes(rec) and len(slots.data[1]) == sto.RECORD_LEN
    again = st.ModuleState(b"abcdefgh", 0)
    assert sto.Store(slots).load(again) == sto.STORE_OK
    assert list(again.cal_gain_ppm) == [1500, -2200, 800, 0, 0, 0] and again.address == 17
    # a format-1 record with a wrong CRC is corrupt like any other
    rec[20] ^= 1
    slots.data = [bytes(rec), None]
    assert sto.Store(slots).load(st.ModuleState(b"abcdefgh", 0)) == sto.STORE_CORRUPT
