# A measurement cycle as a pipeline of named steps (manager_fw/cycle.py): the steps in
# their documented order, each one working on its own on a running core.
from corefixture import Site

from manager_fw import cycle
from manager_fw.jobs.mark import MARK_UNKNOWN
from shared import history_cadence as hc


def test_the_pipeline_runs_the_documented_steps_in_order():
    names = [step.__name__ for step in cycle.PIPELINE]
    assert names == ["take_readings", "ask_late_info", "check_integrity", "update_strings",
                     "evaluate_limits", "watch_silence", "judge_blocks", "set_levels",
                     "queue_service", "record_history"]  # fmt: skip


def test_take_readings_and_set_levels_mark_a_module_that_did_not_answer():
    site = Site(sizes=(3,))
    site.start()
    site.run_s(2)
    c = site.core
    assert list(c.fresh) == [1, 1, 1] and c.voltage_uv[1] == 13620000
    site.unplug(1)
    site.modules[0].voltage_mv = 13650
    site.run_s(2)  # a few cycles: module 2 misses them
    now = site.now_s()
    cycle.take_readings(c, now)
    assert list(c.fresh) == [1, 0, 1]
    assert c.voltage_uv[0] == 13650000 and c.voltage_uv[1] == 13620000  # its last value
    cycle.set_levels(c, now)
    assert c.history_state[1] & hc.STATE_SILENT and not c.history_state[0] & hc.STATE_SILENT
    assert c.marked[1] == MARK_UNKNOWN  # unpolled, a module forgets its mark


def test_process_cycle_counts_the_cycle_and_queues_the_service_requests():
    site = Site(sizes=(2,), config={"strings": [{"modules": 2, "current_sensor": 1}]})
    site.start()
    c = site.core
    cycles = c.cycles
    queued = c.master.service_count
    for job in c.current_jobs:
        job.queued = False
    cycle.process_cycle(c, site.now_s())
    assert c.cycles == cycles + 1
    assert c.current_jobs[0].queued and c.master.service_count > queued


def test_the_history_mode_follows_a_discharge():
    site = Site(sizes=(2,), config={"io": {"ups_input": {"source": "board"}}})
    site.start()
    c = site.core
    assert cycle.history_mode(c, site.now_s()) == hc.MODE_FLOAT
    c.set_ups_input(True)
    site.run_s(2)
    assert cycle.history_mode(c, site.now_s()) == hc.MODE_DISCHARGE
