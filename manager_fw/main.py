# The manager's entry on MicroPython boards (and the virtual unix_manager board): the
# core made from the board's files, driven by the one manager loop (manager_fw/loop.py)
# through the board's hardware abstraction (boards/<board>/hal.py).
#
#   from manager_fw.main import run
#   run(hal)             # never returns on a board (Ctrl-C on the console: REPL)
#   for wait_ms in steps(hal): ...   # the same loop as a cooperative task's turns
#                                    # (manager_fw/web/board.py on the Pico W)
#
# The HAL is manager_fw/loop.py's (boards/pico_w_manager/hal.py is the reference), plus
# what make_core() reads:
#   hal.config_files              file access for manager_fw.config.ConfigStore
#   hal.history_device, hal.event_device   block devices (manager_fw/blockdev.py), or
#                                 None when they could not be opened, and then
#   hal.store_faults              (optional) why, per store (manager_fw/ring_file.open_file_store)
#   hal.ri_store                  (optional) where the Ri baselines persist: default
#                                 manager_fw/ri_store.RiStore("ri_baselines.bin")
#   hal.site_key_path             (optional) the site key file: default site_key.hex
#   hal.started(text), hal.repl_wanted()   (optional) start-up line; Ctrl-C to the REPL

from manager_fw import sitekey
from manager_fw.config import ConfigStore
from manager_fw.core import ManagerCore
from manager_fw.loop import ManagerLoop


def make_core(hal, store=None):
    if store is None:  # the web shell passes its own: its configuration page edits it
        store = ConfigStore("site.json", hal.config_files)
    cfg = store.load()  # the newest good file; a corrupt one is reported, not used
    key = sitekey.load_or_create(getattr(hal, "site_key_path", "site_key.hex"))
    core = ManagerCore(cfg, hal.history_device, hal.event_device, hal.now_s(), site_key=key)
    faults = getattr(hal, "store_faults", None)  # what opening the store files found
    if faults:
        for which in range(len(faults)):
            core.report_store(hal.now_s(), which, faults[which])
    core.config_loaded(hal.now_s(), store)
    # the Ri baselines live beside site.json, apart from it: they survive restarts,
    # configuration edits and firmware updates (docs/judgement.md)
    ri_store = getattr(hal, "ri_store", None)
    if ri_store is None:
        from manager_fw.ri_store import RiStore

        ri_store = RiStore("ri_baselines.bin")
    core.judge.attach_ri_store(ri_store, hal.now_s())
    return core


def run(hal, core=None):
    """The manager on a board: ManagerLoop(core, hal).run() (manager_fw/loop.py)."""
    if core is None:
        core = make_core(hal)
    loop = ManagerLoop(core, hal)
    hal.started("stringcare: manager started, %d modules" % core.layout.module_count)
    try:
        loop.run()
    except KeyboardInterrupt:
        if hasattr(hal, "repl_wanted"):
            hal.repl_wanted()  # Ctrl-C: the operator wants the REPL (boards keep it alive)
        raise


def steps(hal, core=None):
    """The same loop as a generator, one turn (ManagerLoop.poll) per next(): it yields
    how many ms the caller may give other cooperative work (the Pico W's web task,
    manager_fw/web/board.py) before the next turn.  Leaving, however: the alarm contact
    signals (fail-safe)."""
    if core is None:
        core = make_core(hal)
    loop = ManagerLoop(core, hal)
    hal.started("stringcare: manager started, %d modules" % core.layout.module_count)
    try:
        while hal.running():
            yield loop.poll() // 1000
    except KeyboardInterrupt:
        if hasattr(hal, "repl_wanted"):
            hal.repl_wanted()  # Ctrl-C: the operator wants the REPL (boards keep it alive)
        raise
    finally:
        hal.set_outputs(False, 0, False)
