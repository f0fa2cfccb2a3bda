# manager_fw/addressing: the setup flows of SPEC §3 against real module responders.
from busfixture import Rig, uid_for

from manager_fw import addressing as ad
from shared import protocol as p


def press_buttons(rig, schedule):
    """schedule: {time_ms: module index} - a short press on that module's button."""
    pending = dict(schedule)

    def each(now_ms):
        for t in list(pending):
            if now_ms >= t:
                m = rig.modules[pending.pop(t)]
                if m.addressing:
                    m.claim_armed = True

    return each


def test_auto_addressing_in_button_order():
    rig = Rig(addresses=[0, 0, 0, 0])
    job = ad.AutoAddressing(1, 4)
    # the installer walks the string: module 2, 0, 3, 1 (cabled in any order)
    rig.run_job(job, each_ms=press_buttons(rig, {400: 2, 1200: 0, 2100: 3, 3000: 1}))
    assert job.error is None, job.error
    assert [m.address for m in rig.modules] == [2, 4, 1, 3]
    assert [a for a, _ in job.assigned] == [1, 2, 3, 4]
    assert job.assigned[0][1] == "".join("%02x" % b for b in uid_for(3))
    assert not any(m.addressing for m in rig.modules)
    assert job.progress() == "4 of 4 addressed, next 5"


def test_auto_addressing_in_parts_and_resume_after_error():
    rig = Rig(addresses=[0, 0, 5, 0])
    job = ad.AutoAddressing(3, 6)
    rig.run_job(job, each_ms=press_buttons(rig, {300: 0, 900: 1}))
    # 3 and 4 handed out, then 5 is found already taken
    assert [m.address for m in rig.modules][:2] == [3, 4]
    assert job.resume_at == 5
    assert "address 5 is already used by module" in job.error
    assert "resume at 6" in job.error
    job2 = ad.AutoAddressing(6, 6)
    rig.run_job(job2, each_ms=press_buttons(rig, {300: 3}))
    assert job2.error is None and rig.modules[3].address == 6


def test_operator_can_stop_auto_addressing():
    rig = Rig(addresses=[0, 0])
    job = ad.AutoAddressing(1, 10)

    def each(now_ms):
        if now_ms > 700:
            job.stop()
        elif now_ms > 200:
            rig.modules[0].claim_armed = rig.modules[0].addressing

    rig.run_job(job, each_ms=each)
    assert job.error is None
    assert "resume at 2" in job.result
    assert rig.modules[0].address == 1 and rig.modules[1].address == 0
    assert not rig.modules[1].addressing  # everyone left addressing mode


def test_two_buttons_at_once_collide_and_warn():
    rig = Rig(addresses=[0, 0])
    job = ad.AutoAddressing(1, 2)

    def each(now_ms):
        if now_ms > 100 and not job.warning:
            for m in rig.modules:
                m.claim_armed = m.addressing
        elif job.warning and now_ms < 100000:
            rig.modules[1].claim_armed = False  # installer presses only one now
        if job.warning and rig.modules[0].address:
            rig.modules[1].claim_armed = rig.modules[1].addressing

    rig.run_job(job, each_ms=each)
    assert job.warning and "one button at a time" in job.warning
    assert job.error is None
    assert sorted(m.address for m in rig.modules) == [1, 2]


def test_set_address_checks_the_new_one_is_free():
    rig = Rig(addresses=[7, 8])
    job = rig.run_job(ad.SetAddress(7, 8))
    assert "already taken" in job.error
    job = rig.run_job(ad.SetAddress(7, 30))
    assert job.error is None and rig.modules[0].address == 30
    job = rig.run_job(ad.SetAddress(50, 51))
    assert "no module answered at address 50" in job.error


def test_query_lone_module_and_refuse_with_two():
    rig = Rig(addresses=[0])
    job = rig.run_job(ad.QueryLone())
    assert job.error is None and job.result == (0, "".join("%02x" % b for b in uid_for(1)))
    rig2 = Rig(addresses=[3, 9])
    job = rig2.run_job(ad.QueryLone())
    assert "more than one module answered" in job.error


def test_identify_until_the_button_confirms():
    rig = Rig(addresses=[4])
    m = rig.modules[0]
    job = ad.Identify(4, on=True)

    def each(now_ms):
        if now_ms > 2000 and m.identify:  # the installer finds it and presses the button
            m.identify = False
            m.identify_confirmed = True

    rig.run_job(job, each_ms=each)
    assert job.error is None and job.confirmed
    assert "confirmed by its button" in job.result


def test_identify_stopped_by_operator_turns_it_off():
    rig = Rig(addresses=[4])
    job = ad.Identify(4)

    def each(now_ms):
        if now_ms > 1500:
            job.stop()

    rig.run_job(job, each_ms=each)
    assert "stopped" in job.result and not rig.modules[0].identify


def test_reset_one_and_all():
    rig = Rig(addresses=[1, 2, 3])
    job = rig.run_job(ad.ResetAddresses(2))
    assert job.error is None and [m.address for m in rig.modules] == [1, 0, 3]
    job = rig.run_job(ad.ResetAddresses(None))
    assert [m.address for m in rig.modules] == [0, 0, 0]
    job = rig.run_job(ad.ResetAddresses(9))
    assert "did not confirm" in job.error


def test_bad_ranges_are_refused_with_the_limits():
    from dualtest import raises

    e = raises(ValueError, ad.AutoAddressing, 10, 5)
    assert "start <= end" in str(e)
    raises(ValueError, ad.AutoAddressing, 0, 5)
    raises(ValueError, ad.SetAddress, 1, 1000)
    assert p.ADDR_MODULE_MAX == 999
