# Ri judgement without configuration (manager_fw/ri_judge.py, docs/judgement.md): every
# result judged against the string's median and the block's own baseline; baselines
# kept with the block's uid in a table that survives a restart; a replaced block gets a
# new baseline; a damaged table is refused with a reason.
from corefixture import Site, uid_for

from manager_fw import events as ev
from manager_fw import ri_judge as rj
from manager_fw.ri_store import MemoryRiStore
from shared import protocol as p
from shared import thresholds as th


def info_frame(uid):
    buf = bytearray(p.HEADER_LEN + 16)
    buf[p.HEADER_LEN + 8 : p.HEADER_LEN + 16] = uid
    return p.Frame(buf)


def judge(sizes=(12,)):
    string_of = bytearray()
    ranges = []
    first = 0
    for k in range(len(sizes)):
        string_of.extend(bytes([k]) * sizes[k])
        ranges.append((first, first + sizes[k] - 1))
        first += sizes[k]
    return rj.RiJudge(string_of, ranges)


def test_outliers_of_a_string_are_warned_in_the_first_round_they_have_peers():
    j = judge((12,))
    values = [5000000 + 37000 * i for i in range(12)]  # new blocks: within +-20 %
    values[4] = 5200000 * 156 // 100  # +56 %
    values[9] = 5200000 * 157 // 100  # +57 %
    flagged = []
    for _rnd in range(2):
        for i in range(12):
            if j.add(i, values[i]) and i not in flagged:
                flagged.append(i)
    assert sorted(flagged) == [4, 9]
    assert j.why[4] & rj.WHY_STRING and j.over_string_pct[4] >= 30
    assert j.warnings() == 2


def test_the_baseline_trend_warns_at_30_and_alarms_at_50_percent():
    j = judge((4,))
    for _ in range(4):
        for i in range(4):
            j.add(i, 5000000)
    assert list(j.baseline_nohm) == [5000000] * 4
    assert j.add(1, 6400000) == rj.LEVEL_NONE  # +28 %
    assert j.add(1, 6500000) == rj.LEVEL_WARNING and j.trend_newly  # +30 %
    assert j.add(1, 6400000) == rj.LEVEL_WARNING and not j.trend_newly  # hysteresis
    assert j.add(1, 7500000) == rj.LEVEL_ALARM  # +50 %
    assert j.add(1, 5000000) == rj.LEVEL_NONE


def test_a_block_replaced_under_the_same_module_learns_a_new_baseline():
    j = judge((4,))
    for _ in range(4):
        for i in range(4):
            j.add(i, 6000000)
    j.add(2, 6100000)
    assert not j.dropped and j.baseline_nohm[2] == 6000000
    j.add(2, 4400000)  # -27 %: a new block (the module moved over with it)
    assert j.dropped and j.baseline_nohm[2] == 0 and j.count[2] == 1
    for _ in range(3):
        j.add(2, 4400000)
    assert j.baseline_nohm[2] == 4400000 and j.baseline_new


def test_baselines_survive_a_restart_and_a_replaced_block_learns_anew():
    j = judge((4,))
    for i in range(4):
        j.module_uid(i, info_frame(uid_for(i + 1)), 8)
    for _ in range(4):
        for i in range(4):
            j.add(i, 4000000 + 100000 * i)
    table = j.encode()
    assert not j.dirty
    # the manager restarts: a new judge takes the table
    k = judge((4,))
    assert k.decode(table) == ""
    assert list(k.baseline_nohm) == [4000000, 4100000, 4200000, 4300000]
    for i in range(4):
        assert not k.module_uid(i, info_frame(uid_for(i + 1)), 8)  # same blocks
    assert k.add(2, 5500000) == rj.LEVEL_WARNING  # +31 % at once: no relearning
    # block 4 replaced: another uid at its address
    assert k.module_uid(3, info_frame(uid_for(99)), 8)
    assert k.baseline_nohm[3] == 0 and k.count[3] == 0 and k.dirty
    for _ in range(4):
        k.add(3, 3000000)
    assert k.baseline_nohm[3] == 3000000


def test_a_damaged_or_foreign_table_is_refused_with_a_reason():
    j = judge((4,))
    for _ in range(4):
        for i in range(4):
            j.add(i, 4000000)
    table = bytearray(j.encode())
    k = judge((4,))
    bad = bytearray(table)
    bad[10] ^= 1
    assert "damaged" in k.decode(bad) and k.baseline_nohm[0] == 0
    assert "12 modules" in judge((12,)).decode(table) or "4 modules" in judge((12,)).decode(table)
    assert "format" in k.decode(b"\x07" + bytes(table[1:]))
    assert k.decode(None) != ""


def test_the_core_keeps_baselines_across_a_restart_and_spots_a_replaced_block():
    config = {"ri": {"enabled": True}}
    store = MemoryRiStore()
    site = Site(sizes=(3,), config=config)
    site.ri_value[2] = 7000000  # +40 % over its string: warned without configuration
    site.core.judge.attach_ri_store(store, site.now_s())
    site.start()
    site.run_until_s(site.shell.start_s + 3700)  # four rounds: baselines learned
    c = site.core
    assert [(e[2], e[4]) for e in site.events(ev.EV_RI_STRING)] == [(2, 40)]
    assert c.alarms.condition(2, th.Q_RI) == th.COND_HIGH_WARNING
    assert len(site.events(ev.EV_RI_BASELINE)) == 3 and store.data is not None
    # a restart with block 2 replaced (another uid at its address)
    site2 = Site(sizes=(3,), config=config)
    site2.modules[1].uid = uid_for(77)
    site2.core.judge.attach_ri_store(store, site2.now_s())
    site2.start()
    replaced = site2.events(ev.EV_BLOCK_REPLACED)
    assert [e[2] for e in replaced] == [1]
    ri = site2.core.judge.ri
    assert list(ri.baseline_nohm) == [5000000, 0, 7000000]  # kept, except the new block
    # the operator re-baselines block 1
    site2.core.rebaseline_ri(0, site2.now_s())
    assert ri.baseline_nohm[0] == 0
    assert [(e[2], e[5]) for e in site2.events(ev.EV_RI_BASELINE)] == [(0, 1)]


def test_a_module_swapped_live_at_its_address_is_seen_by_the_rolling_info():
    site = Site(sizes=(4,), config={"ri": {"enabled": True}})
    site.start()
    site.run_s(30)
    assert site.events(ev.EV_BLOCK_REPLACED) == []
    site.modules[2].uid = uid_for(88)  # a new block with its own module, same address
    site.run_s(4 * 5 + 10)  # one INFO every 5 s: every module within 20 s
    assert [e[2] for e in site.events(ev.EV_BLOCK_REPLACED)] == [2]
