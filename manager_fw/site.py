# What a manager runs with: the validated site configuration and the string layout
# (address <-> module index <-> label).  Small on purpose: the core imports only this;
# the JSON parser and its messages (manager_fw/config.py) are needed at start-up only,
# and a board can drop them from memory once the configuration is parsed.

from array import array

from shared.compat import const

NUMBERING_CONSECUTIVE = const(0)
NUMBERING_PER_STRING = const(1)

UPS_NONE = const(0)
UPS_BOARD = const(1)  # a digital input of the manager board (the shell feeds it)
UPS_BOX = const(2)  # an input of a relay/IO box on the bus

# Nominal block voltage of each module variant (docs/protocol.md §8), mV.
VARIANT_NOMINAL_MV = (2000, 4000, 6000, 12000, 16000)
VARIANT_NAMES = ("2 V cell", "4 V block", "6 V block", "12 V block", "16 V block")
# What each variant measures (SPEC §1; shared/variants.py measure_*_uv, a test checks
# they agree), mV: a reading outside it is implausible (manager_fw/poller.py).
VARIANT_MEASURE_MV = ((700, 6000), (2400, 5000), (4800, 8000), (8000, 17000), (9700, 21000))


def variant_name(v: int) -> str:
    return VARIANT_NAMES[v] if 0 <= v < len(VARIANT_NAMES) else "variant %d" % v


class ConfigError(ValueError):
    """A configuration that cannot be used; str() is 'path: what is wrong'."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__("%s: %s" % (path, message) if path else message)
        self.path = path


class Layout:
    """Strings, their modules' bus addresses, module indices and labels.

    module index: 0-based over the whole system, string by string (the order of the
    history, the evaluator and the status arrays); address: the module's bus address;
    position: 0-based within its string.  Each string's addresses are consecutive.
    """

    def __init__(self, sizes, firsts, numbering: int = NUMBERING_CONSECUTIVE) -> None:
        if len(sizes) != len(firsts) or not sizes:
            raise ConfigError("strings", "one first address per string, at least one string")
        self.sizes = tuple(sizes)
        self.firsts = tuple(firsts)
        self.numbering = numbering
        self.string_count = len(sizes)
        self.string_start = [0] * (self.string_count + 1)
        ranges = []
        for k in range(self.string_count):
            self.string_start[k + 1] = self.string_start[k] + sizes[k]
            ranges.append((firsts[k], firsts[k] + sizes[k] - 1))
        self.ranges = ranges
        self.module_count = self.string_start[self.string_count]
        self.max_address = ranges[-1][1]
        index = array("H", b"\xff\xff" * (self.max_address + 1))
        for k in range(self.string_count):
            for j in range(sizes[k]):
                index[firsts[k] + j] = self.string_start[k] + j
        self._index = index
        self.addresses = array("H", bytes(2 * self.module_count))  # module index -> address
        for i in range(self.module_count):
            self.addresses[i] = self.address(i)

    def string_of(self, module: int) -> int:
        starts = self.string_start
        k = 0
        while starts[k + 1] <= module:
            k += 1
        return k

    def position(self, module: int) -> int:
        return module - self.string_start[self.string_of(module)]

    def address(self, module: int) -> int:
        k = self.string_of(module)
        return self.firsts[k] + module - self.string_start[k]

    def module(self, address: int) -> int:
        """Module index of a bus address, -1 when no configured module has it."""
        if address < 0 or address > self.max_address:
            return -1
        i = self._index[address]
        return -1 if i == 0xFFFF else i

    def label(self, module: int) -> str:
        """'17' (consecutive numbering) or '4S2' (per string: module 4 of string 2)."""
        if self.numbering == NUMBERING_PER_STRING:
            k = self.string_of(module)
            return "%dS%d" % (module - self.string_start[k] + 1, k + 1)
        return str(module + 1)

    def address_label(self, address: int) -> str:
        i = self.module(address)
        return self.label(i) if i >= 0 else "address %d" % address

    def find(self, text: str) -> int:
        """Module index of a label as the operator types it ('17', '4S2', '4s2'), or -1."""
        t = text.strip().upper()
        cut = t.find("S")
        if cut >= 0:
            a = t[:cut]
            b = t[cut + 1 :]
            if not (a.isdigit() and b.isdigit()):
                return -1
            pos = int(a) - 1
            k = int(b) - 1
            if 0 <= k < self.string_count and 0 <= pos < self.sizes[k]:
                return self.string_start[k] + pos
            return -1
        if not t.isdigit():
            return -1
        i = int(t) - 1
        return i if 0 <= i < self.module_count else -1


class SiteConfig:
    """A validated site configuration in the firmware's units (manager_fw/config.py
    parse_config makes one; docs/manager.md lists every field)."""

    def __init__(self) -> None:
        self.source: dict = {}  # the JSON object it came from
        self.site = ""
        self.baud = 115200
        self.numbering = NUMBERING_CONSECUTIVE
        self.chemistry = "vrla"  # chemistry profile key (manager_fw/profiles.py)
        self.chemistry_name = ""
        self.variant = 3
        self.cells = 6
        self.nominal_mv = 12000  # block nominal voltage
        self.float_mv = 0  # block float voltage of the profile
        self.layout: Layout = Layout((1,), (1,))
        self.string_names: list = []
        self.equalise: list = []  # per string, bool
        self.current_sensor: list = []  # per string: sensor number 1..8, 0 = none
        self.cycle_period_ms = 0
        self.target_timeout_s = 10
        self.window_low_mv = 0
        self.window_high_mv = 0
        self.thresholds = None  # shared.thresholds.ThresholdSet
        self.ri_baseline_nohm = 0
        self.ri_offset_nohm = 0
        self.temp_offset_mc = 0
        self.silent_delay_s = 240
        self.silent_contact_delay_s = 90
        self._ri_defaults()
        self._discharge_and_runaway_defaults()
        self._balance_and_io_defaults()

    def _ri_defaults(self) -> None:
        self.ri_enabled = True
        self.ri_method = 0
        self.ri_first_delay_s = 900
        self.ri_initial_rounds = 4
        self.ri_initial_interval_s = 900
        self.ri_period_s = 86400
        self.ri_spacing_s = 30
        self.ri_settle_s = 7200
        self.ri_trend_pct = 30
        self.ri_baseline_count = 4
        self.ri_trend_alarm_pct = 50  # manager_fw/ri_judge.py
        self.ri_string_pct = 30

    def _discharge_and_runaway_defaults(self) -> None:
        self.discharge_drop_mv = 0
        self.discharge_current_ma = 1000
        self.discharge_confirm_cycles = 2
        self.discharge_end_s = 60
        self.discharge_recovery_s = 43200
        self.recharge_max_s = 43200  # manager_fw/phases.py
        self.runaway_enabled = True
        self.runaway_sample_s = 600
        self.runaway_rise_mc = 3000
        self.runaway_above_mc = 5000
        self.runaway_current_rise_pct = 50
        self.runaway_current_min_ma = 100
        self.runaway_voltage_rise_mv = 20
        self.runaway_confirm = 2
        self.runaway_sag_mv = 30  # 5 mV per cell
        self.runaway_alone_above_mc = 15000

    def _balance_and_io_defaults(self) -> None:
        self.balance_max_wh_day = -1  # manager_fw/balance_limits.py; -1: 24 Wh per block
        self.balance_hold_wh_day = -1  # the hold budget; -1: 2.4 Wh per block
        self.balance_give_up_s = 14400
        # relay/IO boxes: [(box 1..15, relay bit 0..3, strings mask)], alarm relay
        self.breaker_relays: list = []
        self.alarm_box = 0  # 0: none
        self.alarm_relay = 0  # bit 0..3
        self.ups_source = UPS_NONE
        self.ups_box = 0
        self.ups_input = 0  # bit 0..3
        self.ups_active_closed = True
        self.ups_strings_mask = 0
        self.boxes: list = []  # relay/IO box numbers the configuration uses, ascending
