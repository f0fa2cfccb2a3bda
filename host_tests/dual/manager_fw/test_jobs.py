# The manager core's bus jobs (manager_fw/jobs/), each on its own: the foreground jobs
# on a bare bus master with modules on the virtual bus (busfixture.Rig), the service
# jobs in a running core (corefixture.Site).
from busfixture import Rig

from manager_fw.jobs import current as jcur
from manager_fw.jobs import io as jio
from manager_fw.jobs import wake as jw


def test_the_wake_preamble_broadcasts_every_100_ms_for_3_s():
    rig = Rig(n_modules=2)
    job = jw.WakePreamble()
    rig.run_job(job)
    assert job.done and job.sent == jw.WAKE_PREAMBLE_MS // jw.WAKE_INTERVAL_MS
    assert rig.master.requests == job.sent  # broadcasts only, no reply awaited
    assert rig.master.timeouts == 0


def test_sleep_is_broadcast_twice_and_the_modules_sleep():
    rig = Rig(n_modules=2)
    job = jw.SleepJob()
    rig.run_job(job)
    assert job.done and job.sent == 2 and rig.master.requests == 2
    assert all(m.sleeping for m in rig.modules)


def test_an_io_job_sets_relays_until_the_box_shows_them():
    job = jio.IoJob(None, 1)
    assert not job.pending()  # no relay of this box is used
    job.mask = 0b0110
    assert job.pending()  # not read back yet
    job.known = True
    job.relays = 0b0010
    job.wanted = 0b0010
    assert not job.pending()
    job.wanted = 0b0110
    assert job.pending()
    job.relays = 0b1110  # a relay the site does not use differs: not our business
    assert not job.pending()


def test_a_string_current_is_lost_after_three_missed_reads():
    from corefixture import Site

    site = Site(sizes=(2,), config={"strings": [{"modules": 2, "current_sensor": 1}]})
    site.start()
    c = site.core
    site.run_s(2)
    assert c.string_current(0) == 150
    for n in range(jcur.SENSOR_LOST_MISSES):
        assert c.string_current(0) == 150, n
        jcur.sensor_missed(c, 1)
    assert c.string_current(0) is None and c._current_new[0]
    jcur.sensor_reading(c, 1, 2000, 0)  # it answers again
    assert c.string_current(0) == 2000 and c.sensor_misses[1] == 0
    jcur.sensor_reading(c, 1, 2000, 1)  # a reading flagged invalid by the sensor
    assert c.string_current(0) is None and c.sensor_fault[1] == 1


def test_a_mark_goes_to_each_module_whose_shown_level_differs():
    from corefixture import Site

    site = Site(sizes=(3,))
    site.start()
    c = site.core
    site.run_s(2)
    assert list(c.marked) == [0, 0, 0]
    sent = c.marks_sent
    c.marked[2] = 1  # module 3 shows a warning it does not have (a reboot, a lost MARK)
    c._enqueue(c.mark_job)
    site.run_s(2)
    assert c.marked[2] == 0 and site.modules[2].mark == 0 and c.marks_sent == sent + 1
