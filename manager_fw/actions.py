# The operator's actions on the manager core, one dispatch for every way an operator
# reaches a running manager: the web interface (manager_fw/web/link.py queues them for
# the manager's loop) and the command line (`stringcare` to a running manager).  Called
# by the manager's loop between two steps of the core, never from a server thread.
#
#   ok, text = actions.carry_out(core, now_s, kind, args, number)
#
# kind: one of ACTIONS (or "log": only the record of who, e.g. a login); args: a dict of
# integers (string and module 0-based, addresses as on the bus); number: the operator's
# number (the users file's), logged with the action as EV_OPERATOR's extra so every
# change says who made it.  text says what the manager did, or why not.

from manager_fw import config
from manager_fw import events as ev
from shared.compat import const

# EV_OPERATOR actions (arg); extra: the user's number in the users file
OP_MUTE = const(1)
OP_RUNAWAY_RESET = const(2)
OP_RI_NOW = const(3)
OP_EQUALISE_ON = const(4)
OP_EQUALISE_OFF = const(5)
OP_REBASELINE = const(6)
OP_CONFIG = const(7)
OP_LOGIN = const(8)
OP_USER_ADDED = const(9)
OP_ADDRESSING = const(10)  # value: the job (ADDR_JOB_*), module: its address or start
OP_USER_DELETED = const(11)  # value: the user's number
OP_PASSWORD = const(12)  # value: whose password changed (the user's number)
# extra of a command from the local control channel (`stringcare ctl`,
# stringcare_host/control.py), not from a web user: this bit | the sender's Unix uid
FROM_CONTROL = const(0x8000)
CONTROL_UID_MASK = const(0x7FFF)  # all ones: uid not known
OP_NAMES = (
    "?",
    "mute",
    "runaway reset",
    "Ri now",
    "equalising on",
    "equalising off",
    "Ri re-baseline",
    "configuration saved",
    "login",
    "user added",
    "addressing",
    "user deleted",
    "password changed",
)
ADDR_JOBS = ("address_auto", "address_set", "address_query", "identify", "address_reset")
ADDR_JOBS_STOP = const(5)  # EV_OPERATOR value of OP_ADDRESSING: ADDR_JOBS index, 5 = stop
ACTIONS = {
    "mute": OP_MUTE,
    "runaway_reset": OP_RUNAWAY_RESET,
    "ri_now": OP_RI_NOW,
    "equalise_on": OP_EQUALISE_ON,
    "equalise_off": OP_EQUALISE_OFF,
    "rebaseline": OP_REBASELINE,
    "address_auto": OP_ADDRESSING,
    "address_set": OP_ADDRESSING,
    "address_query": OP_ADDRESSING,
    "identify": OP_ADDRESSING,
    "address_reset": OP_ADDRESSING,
    "address_stop": OP_ADDRESSING,
}
STRING_ACTIONS = ("runaway_reset", "equalise_on", "equalise_off")


def log(core, now_s, op, number, module=ev.NO_MODULE, string=ev.NO_STRING, value=0):
    core._log(now_s, ev.EV_OPERATOR, module, string, value, op, number)


def carry_out(core, now_s, kind, args, number):
    """One action (see the module comment): (ok, text)."""
    if kind == "log":
        log(core, now_s, args.get("op", 0), number, value=args.get("value", 0))
        return True, "logged"
    if kind in ADDR_JOBS or kind == "address_stop":
        return addressing(core, now_s, kind, args, number)
    if kind in STRING_ACTIONS:
        string = args.get("string", -1)
        k = core.layout.string_count
        if not 0 <= string < k:
            return False, "string %d: choose 1..%d" % (string + 1, k)
        if kind == "runaway_reset":
            return _runaway_reset(core, now_s, string, number)
        on = kind == "equalise_on"
        core.set_equalising(string, on)
        log(core, now_s, OP_EQUALISE_ON if on else OP_EQUALISE_OFF, number, string=string)
        return True, "string %d: equalising %s" % (string + 1, "on" if on else "off")
    if kind == "mute":
        core.press_mute(now_s)
        log(core, now_s, OP_MUTE, number)
        return True, "buzzer muted until the next new alarm"
    if kind == "ri_now":
        return _ri_now(core, now_s, number)
    if kind == "rebaseline":
        module = args.get("module", -1)
        if not -1 <= module < core.layout.module_count:
            return False, "module %d: no such module" % module
        core.rebaseline_ri(module, now_s)
        log(core, now_s, OP_REBASELINE, number, module=module & 0xFFFF)
        return True, "Ri baseline of %s learned again from the next results" % (
            "every module" if module < 0 else "module " + core.layout.label(module)
        )
    return False, "unknown action %r: one of %s" % (kind, ", ".join(sorted(ACTIONS)))


def _runaway_reset(core, now_s, string, number):
    if core.runaway is None:
        return False, "string %d: thermal runaway detection is off" % (string + 1)
    done = core.reset_runaway(string, now_s)
    log(core, now_s, OP_RUNAWAY_RESET, number, string=string, value=int(done))
    if done:
        return True, "string %d: thermal-runaway trip reset" % (string + 1)
    return True, "string %d had no thermal-runaway trip latched" % (string + 1)


def _ri_now(core, now_s, number):
    from manager_fw.core import RI_ROUND_OFF, RI_ROUND_RUNNING

    started = core.start_ri_round(now_s)
    if started == RI_ROUND_OFF:
        return False, "Ri measurement is off in the configuration (ri.enabled)"
    if started == RI_ROUND_RUNNING:
        return True, "an Ri round is running already"
    log(core, now_s, OP_RI_NOW, number)
    return True, "Ri round started: one module at a time, 30-50 s apart"


def _new_job(kind, args) -> tuple:
    """The addressing job of an action and what the operator is told, or (None, why)."""
    from manager_fw import addressing as mad

    address = args.get("address", -1)
    if kind == "address_auto":
        auto = mad.AutoAddressing(args.get("start", 1), args.get("end", 1))
        return auto, "automatic addressing %d..%d: press each module's button in turn" % (
            auto.start,
            auto.end,
        )
    if kind == "address_set":
        one = mad.SetAddress(args.get("current", -1), args.get("new", -1))
        return one, "setting address %d to %d (one module on the bus)" % (one.current, one.new)
    if kind == "address_query":
        return mad.QueryLone(), "asking the lone module on the bus its address"
    if kind == "identify":
        if not 1 <= address <= 0xFFFF:
            return None, "identify: give the module's address"
        return mad.Identify(
            address
        ), "module %d blinks red/green until its button is pressed" % address
    return mad.ResetAddresses(None if address < 0 else address), "resetting %s to address 0" % (
        "every module" if address < 0 else "module %d" % address
    )


def addressing(core, now_s, kind, args, number):
    """Setup mode (docs/manager.md, "Addressing"): polling stops while a job owns the
    bus; the core starts its census again when the job is done."""
    job = core.setup_job
    if kind == "address_stop":
        if job is None:
            return False, "no addressing job is running"
        job.stop()
        log(core, now_s, OP_ADDRESSING, number, value=ADDR_JOBS_STOP)
        return True, "stopping %s; polling resumes after it" % type(job).__name__
    if job is not None:
        return False, "%s is still running: stop it first" % type(job).__name__
    try:
        job, text = _new_job(kind, args)
    except ValueError as e:
        return False, str(e)
    if job is None:
        return False, text
    core.begin_setup(job, now_s)
    address = args.get("address", -1)
    op_module = getattr(job, "start", address if address >= 0 else ev.NO_MODULE)
    log(core, now_s, OP_ADDRESSING, number, module=op_module & 0xFFFF,
        value=ADDR_JOBS.index(kind))  # fmt: skip
    return True, text


def save_config(core, now_s, obj, number, store):
    """A new site.json (a dict): checked by the manager's parser, stored with
    store.save (the last good copy kept) when there is a store, logged; thresholds
    apply at once, the rest when the shell starts the core again.  (ok, text)."""
    try:
        cfg = config.parse_config(obj)
    except config.ConfigError as e:
        return False, str(e)
    if store is not None:
        try:
            store.save(obj)
        except Exception as e:  # noqa: BLE001 - storage fault: the old one stays
            return False, "not stored (%s): the configuration in use is unchanged" % e
    else:
        import json

        store = _TextOnly(json.dumps(obj))
    core.config_saved(now_s, store)
    log(core, now_s, OP_CONFIG, number)
    core.cfg.thresholds = cfg.thresholds
    alarms = core.alarms
    for s in range(len(alarms.thresholds)):
        alarms.thresholds[s] = cfg.thresholds
    if core.history is not None and hasattr(core.history, "set_thresholds"):
        core.history.set_thresholds(cfg.thresholds)
    return True, "saved; thresholds apply now, other changes when the manager restarts"


class _TextOnly:
    """What core.config_saved needs when there is no store (the simulator)."""

    def __init__(self, text):
        self.text = text
