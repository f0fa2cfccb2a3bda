# A manager and modules on the virtual bus (boards/sim/bus.py), for dual tests.
from boards.sim.bus import MasterNode, ResponderNode, VirtualBus, run
from manager_fw.bus import BusMaster
from manager_fw.poller import Poller
from module_fw.responder import Responder
from module_fw.state import ModuleState

KEY = bytes.fromhex("537472696e67436172652d7465737421")  # the published test key


def uid_for(n):
    return bytes([0x5C, 0xA1, 0, 0, (n >> 8) & 0xFF, n & 0xFF, 0x42, n & 0x7F])


class Rig:
    def __init__(self, strings=None, n_modules=0, baud=115200, seed=1, addresses=None,
                 latency_us=500):  # fmt: skip
        self.bus = VirtualBus(baud, seed)
        self.master = BusMaster(baud, KEY)
        self.master_node = MasterNode(self.master)
        self.bus.attach(self.master_node)
        self.poller = None
        if strings:
            self.poller = Poller(strings, baud)
            self.master.poller = self.poller
        self.modules = []
        self.nodes = []
        if addresses is None:
            addresses = list(range(1, n_modules + 1))
        for i, addr in enumerate(addresses):
            self.add_module(addr, uid_for(i + 1), latency_us)

    def add_module(self, address, uid, latency_us=500):
        s = ModuleState(uid, variant_id=3)
        s.address = address
        s.key = KEY
        s.target_min_uv, s.target_max_uv = 12600000, 14700000  # (the core sets them: 12 V)
        s.voltage_uv = 13000000 + 1010 * address
        s.temp_mc = 20000 + 200 * address
        s.balance_pct = address % 101
        node = ResponderNode(Responder(s), latency_us)
        self.bus.attach(node)
        self.modules.append(s)
        self.nodes.append(node)
        return s

    def run_ms(self, ms):
        run(self.bus, self.master_node, self.bus.now_us + ms * 1000)

    def run_cycles(self, n, limit_ms=10000):
        target = self.poller.cycle + n
        end = self.bus.now_us + limit_ms * 1000
        while self.poller.cycle < target and self.bus.now_us < end:
            run(self.bus, self.master_node, self.bus.now_us + 1000)
        assert self.poller.cycle >= target, "cycle did not finish"

    def run_job(self, job, limit_ms=60000, each_ms=None):
        self.master.foreground = job
        end = self.bus.now_us + limit_ms * 1000
        while not job.done and self.bus.now_us < end:
            run(self.bus, self.master_node, self.bus.now_us + 1000)
            if each_ms is not None:
                each_ms(self.bus.now_us // 1000)
        self.run_ms(5)  # let the last broadcast reach the modules
        self.master.foreground = None
        assert job.done, "job did not finish"
        return job
