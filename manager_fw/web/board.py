# The web interface on a MicroPython manager board (Pico W; the virtual unix_manager
# board runs the same): one asyncio loop, the manager's bus loop a task created first,
# the Microdot server a second task (docs/operator.md, "How it sits beside the
# battery").
#
#   from manager_fw.web import board
#   board.serve(hal, settings)     # instead of manager_fw.main.run(hal)
#
# The bus goes first: the bus task runs one turn of manager_fw.main.steps() and gives
# the server a turn only when the loop yields; every piece of web work between two bus
# turns is small (the status is streamed in pieces of STATUS_PIECE modules, a download
# in CHUNK bytes, the password hash in steps of a few iterations), connections are
# bounded and every read has a deadline (manager_fw/web/app.py).  Between two turns the
# bus task also carries out the operators' queued commands and hands the link a fresh
# view every PUBLISH_MS (manager_fw/web/link.py, board mode: no copies).
#
# settings (stringcare_settings.py, docs/operator.md): web_port (80; 0 or None: no web
# interface), web_host ("0.0.0.0"), wifi_ssid / wifi_password (the board's HAL joins).
# No default password: while web_users.json holds no account, a one-time setup code is
# printed on the console (USB serial) at every start.

import asyncio
import gc
import time

from manager_fw import actions as act
from manager_fw import events as ev
from manager_fw import main as shell
from manager_fw.config import ConfigStore
from shared.compat import ticks_diff, ticks_ms

PUBLISH_MS = 1000
# the most one slice of a module page's history reading holds the loop (it ends sooner
# when the bus loop's next turn is due); module_history.py's steps are ~0.1 ms each on
# the unix port (a segment header, one frame)
SLICE_US = 5000
CHUNK = 1024  # bytes of the history image per piece of a download
USERS_FILE = "web_users.json"
# each request being served holds 5-10 KB of heap (Microdot's parsed request, its
# tasks, the answer being made): ACTIVE at once, WAITING more hold only their sockets
# until their turn, the rest get 503 - the web's heap stays bounded beside 600 modules
ACTIVE = 2
WAITING = 6
STREAMS = 1  # a live page on an event stream (it holds a turn); others poll


def _free():
    gc.collect()
    return gc.mem_free()  # type: ignore[attr-defined]


class _EventTee:
    """Every event the core logs, also to the link's short list (the events page)."""

    def __init__(self, web, write):
        self.web = web
        self.write = write  # the log's append, or its queue (the core's storage hand-off)

    def __call__(self, time_s, code, module=ev.NO_MODULE, string=ev.NO_STRING, value=0,
                 arg=0, extra=0):  # fmt: skip
        ok = self.write(time_s, code, module, string, value, arg, extra)
        self.web.event(time_s, code, module, string, value, arg, extra)
        return ok


class BoardWeb:
    """The board's web part: built after the core, so its own heap can be told apart."""

    def __init__(self, hal, settings, core=None, store=None):
        self.hal = hal
        self._published = 0
        self.bus_due_us = 0  # when the bus loop's next turn is due (ticks_us)
        self.reading = False  # a module page's history reading under way
        self.heap = {}  # bytes free at each stage (docs/benchmarks.md web.heap_kb.pico_w.600)
        if store is None:
            store = ConfigStore("site.json", hal.config_files)
        self.core = core if core is not None else shell.make_core(hal, store)
        self.heap["core"] = _free()
        import json

        from manager_fw.web import app as webapp
        from manager_fw.web import auth as au
        from manager_fw.web import link as lk
        from manager_fw.web import module_history as mh

        self.module_history_class = mh.ModuleHistory

        self.heap["code"] = _free()
        iterations = au.ITERATIONS["rp2040" if _is_rp2() else "unix"]
        self.auth = au.Auth(hal.config_files, USERS_FILE, iterations, max_sessions=8)
        obj = None
        if store.text:
            try:
                obj = json.loads(store.text)
            except ValueError:
                obj = None
        self.link = lk.WebLink(obj, store, board=True)
        self.app = webapp.make_app(
            self.link, self.auth, _seconds, board_hash=True, max_connections=ACTIVE,
            history_image=self.history_image, history_module=self.module_history,
        )  # fmt: skip
        self.app.max_waiting = WAITING
        self.app.max_streams = STREAMS
        self.port = settings.get("web_port", 80)
        self.host = settings.get("web_host", "0.0.0.0")
        self.names = ev.EVENT_NAMES
        self.op_names = act.OP_NAMES
        log = self.core.events
        if log is not None:
            log.append = _EventTee(self, log.append)
            if hasattr(log, "queue"):  # deferred: the core queues, persist() writes
                log.queue = _EventTee(self, log.queue)
        self.heap["app"] = _free()
        self.link.heap_start = [self.heap["core"], self.heap["code"], self.heap["app"]]

    def announce(self):
        """The console (the Pico W's USB serial): where, and on a first start the code."""
        h = self.heap
        print(
            "stringcare: web: heap free %d KB beside the core, %d KB after the web's code, "
            "%d KB with the app" % (h["core"] // 1024, h["code"] // 1024, h["app"] // 1024)
        )
        if self.auth.problem:
            print("stringcare: web: %s" % self.auth.problem)
        print("stringcare: web interface on port %d" % self.port)
        if self.auth.setup_code is not None:
            print("stringcare: web setup code: %s (no account yet: open the web interface "
                  "and create the admin with it)" % self.auth.setup_code)  # fmt: skip

    def event(self, time_s, code, module, string, value, arg, extra):
        core = self.core
        label = ""
        if module != ev.NO_MODULE and module < core.layout.module_count:
            label = core.layout.label(module)
            string = core.layout.string_of(module)
        if code == ev.EV_OPERATOR:
            what = self.op_names[arg] if arg < len(self.op_names) else "action %d" % arg
            who = self.auth.user_by_number(extra) or "user #%d" % extra
            text = "%s by %s" % (what, who)
        else:
            text = self.names[code] if code < len(self.names) else "event %d" % code
            if value:
                text = "%s (%d)" % (text, value)
        self.link.add_event(str(time_s), code, label, string, text)

    def history_image(self):
        """The history store's device image in CHUNK pieces (what `stringcare history`
        reads), never the whole image in memory; the bus runs between two pieces."""
        dev = self.hal.history_device
        if dev is None:
            raise OSError("no history store on this board")
        buf = bytearray(CHUNK)
        addr = 0
        while addr < dev.size:
            n = min(CHUNK, dev.size - addr)
            dev.read(addr, buf, n)
            yield bytes(buf) if n == CHUNK else bytes(buf[:n])
            addr += n

    async def module_history(self, i):
        """Module i's voltage, temperature and Ri from the history store's key frames
        (manager_fw/web/module_history.py), read in slices of at most about SLICE_US,
        each ended as soon as the bus loop's next turn is due, the bus's turn between
        two; the longest slice is in the status (history_slice_us_max).  One reading
        at a time: a second page meanwhile gets its module without the history, and
        says so (it must not hold both of the ACTIVE turns for seconds)."""
        dev = self.hal.history_device
        if dev is None:
            raise OSError("no history store on this board")
        if self.reading:  # one at a time: a full store takes seconds of a Pico W
            raise OSError("the history is being read for another module page: reload shortly")
        self.reading = True
        try:
            return await self._read_history(dev, i)
        finally:
            self.reading = False

    async def _read_history(self, dev, i):
        reading = self.module_history_class(dev, i, self.core.layout.module_count)
        ticks_us = time.ticks_us  # type: ignore[attr-defined]
        diff = time.ticks_diff  # type: ignore[attr-defined]
        link = self.link
        t0 = ticks_us()
        for _ in reading.steps():
            now = ticks_us()
            d = diff(now, t0)
            if d >= SLICE_US or diff(now, self.bus_due_us) >= 0:  # the bus first
                if d > link.history_slice_us_max:
                    link.history_slice_us_max = d
                await asyncio.sleep_ms(0)  # type: ignore[attr-defined]
                t0 = ticks_us()
        d = diff(ticks_us(), t0)
        if d > link.history_slice_us_max:
            link.history_slice_us_max = d
        return reading

    def turn(self, core, now_ms):
        """Between two bus turns: the queued commands, and a fresh view now and then."""
        now_s = self.hal.now_s() - core.wall_offset_s  # the core's steady seconds
        self.link.apply(core, now_s)
        if ticks_diff(now_ms, self._published) >= PUBLISH_MS:
            self._published = now_ms
            self.link.publish(core, now_s)
            free = _free()  # a collection a second: a few ms of an RP2040, less fragmentation
            link = self.link
            link.heap_free = free
            if link.heap_low is None or free < link.heap_low:
                link.heap_low = free

    async def bus(self):
        """The manager's loop, first: the web gets a turn whenever it yields."""
        self._published = ticks_ms()
        core = self.core
        ticks_us = time.ticks_us  # type: ignore[attr-defined]
        add = time.ticks_add  # type: ignore[attr-defined]
        for wait_ms in shell.steps(self.hal, core):
            self.turn(core, ticks_ms())
            self.bus_due_us = add(ticks_us(), wait_ms * 1000)  # long work yields by then
            await asyncio.sleep_ms(wait_ms)  # type: ignore[attr-defined]
        self.app.shutdown()

    async def server(self):
        """The web server; if it fails (the port taken, no network) the bus runs on."""
        try:
            await self.app.start_server(self.host, self.port)
        except Exception as e:  # noqa: BLE001 - the battery comes first: say it, go on
            print("stringcare: web interface stopped: %r" % (e,))

    async def main(self):
        bus = asyncio.create_task(self.bus())  # created first: it runs first
        self.announce()
        asyncio.create_task(self.server())
        await bus


def _seconds():
    return int(time.time())  # sessions and the login limiter: the RTC's seconds


def _is_rp2():
    import sys

    return sys.platform == "rp2"


def serve(hal, settings):
    """Run the manager with its web interface (never returns on a board).  Leaving by
    any path releases the alarm contact, as manager_fw.main.run does."""
    try:
        web = BoardWeb(hal, settings)
        asyncio.run(web.main())
    except KeyboardInterrupt:
        if hasattr(hal, "repl_wanted"):
            hal.repl_wanted()  # Ctrl-C: the operator wants the REPL
        raise
    finally:
        hal.set_outputs(False, 0, False)
