"""The simulated string: physics, one real module core per block, the real manager core,
the virtual bus between them, in virtual time (docs/simulation.md, "The simulator").

Per tick (tick_s, 5 s by default, 1 s while the battery is off float charge):
  1. events of the scenario that are due are applied (mains failure, a hot block, ...);
  2. every module's bleed current (its core's duty through its board's bleed resistor)
     goes into the physics, which steps the string (StringBank.step);
  3. every board heats with its bleed power; its simulated front end turns the block's
     terminal voltage, ripple and temperatures into ADC frame sums for its core, which
     runs its measurement, balancing and button/LED logic (ModuleCore); Ri captures the
     cores ask for are synthesised from the block's R0 + RC pair and fed to them;
  4. the manager core and the bus run until the end of the tick: every poll, target
     broadcast, reply, collision and fault as bytes at the configured baud.
The balancing therefore acts only through the physics, as on a real string.
Deterministic for a given scenario and seed.

Speed: the module cores see one voltage frame per tick (on a board, one per 100 ms):
their filters and controller run on elapsed time, and the physics that matters for
balancing moves over minutes.  docs/simulation.md states what this leaves out.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from boards.sim import devices as simdev
from boards.sim.bus import ResponderNode, VirtualBus
from boards.sim.frontend import Block, Ripple, SimBoard, meter_reading_v
from boards.sim.manager_shell import SimManagerShell
from boards.sim.riset import ri_values
from manager_fw import addressing as mad
from manager_fw import blockdev, config
from manager_fw import events as mev
from manager_fw import poller as pl
from manager_fw.core import ManagerCore
from module_fw import store as sto
from module_fw.core import ModuleCore
from module_fw.state import CAL_TEMPCO
from shared import auth, measure, ri, variants
from shared import frontend as fe
from shared.compat import TICKS_MAX
from stringcare.commands import calibrate
from stringcare.dev.protocol_vectors import TEST_KEY_HEX
from stringcare.sim import judge
from stringcare.sim import params as prm
from stringcare.sim import physics as phy
from stringcare.sim.policy import greedy_bleed
from stringcare.sim.scenario import Event, Scenario
from stringcare_host import status

# Sim clock: the run starts at 2026-01-01T00:00:00Z in StringCare seconds.
START_S = 189302400
# The simulated site's key of authenticated commands (the published test key of
# docs/protocol-vectors.json: a simulation has nothing to protect)
SIM_SITE_KEY = bytes.fromhex(TEST_KEY_HEX)
BAND_V = 0.010  # "within +-10 mV of the string's target"
# The band is judged outside each block's own Ri measurement: its capture draws the
# excitation (1 A steps on a 12 V block, 0.5 A on average for 3.2 s), which dips a
# 40 Ah block by ~25 mV at the nominal interface capacitance; it comes back at the
# pace of its interface and its slower stages (a minute or two: docs/simulation.md,
# "Balancing as a band").  A block's own deviation counts neither against the band
# (converge_h) nor in the settled swing for its capture and then while it comes back:
# until it is within RI_BACK_V of its deviation when the capture began, and only while
# it keeps getting closer to it: at every RI_PROGRESS_S closer than RI_PROGRESS_S
# before (a block that drifts away, or settles elsewhere, counts within 2 RI_PROGRESS_S),
# at most RI_RECOVER_CAP_S after the capture.  The others' (they carry the rest of the
# string voltage meanwhile, ~1.6 mV each on 16 blocks) always count.  Judged from one
# sample to the next (before 2026-12-05), a recovery ended on a blip: samples come
# every tick and wherever a capture starts or ends, some 0.7 s apart, and another
# block's capture starting moves the string current; a block 5.4 mV from where it
# had been, coming back at 0.3 mV a tick, stepped 0.04 mV the wrong way and counted
# from there (the band's C x 3 seed 4: a settled swing of 5.8 mV that was its own
# capture's dip).
RI_BACK_V = 0.001  # half the settled swing's goal
RI_PROGRESS_S = 30.0
RI_RECOVER_CAP_S = 1800.0
TEMPCO_CAL_SAMPLES = 10  # readings per point, as `stringcare calibrate tempco` takes
ADC_KIND = {"rp2040": fe.ADC_RP2040, "stm32g4": fe.ADC_STM32G4}
BLOCK_TYPE = {
    "vrla-12v-40ah": prm.VRLA_12V_40AH,
    "vrla-12v-100ah": prm.VRLA_12V_100AH,
    "vrla-2v-500ah": prm.VRLA_2V_500AH,
    "vrla-4v-200ah": prm.VRLA_4V_200AH,
    "vrla-6v-200ah": prm.VRLA_6V_200AH,
    "vrla-16v-40ah": prm.VRLA_16V_40AH,
}
# Calibration points of the simulated engineer, per cell (12 V: 11.0 and 14.5 V, the
# tempco at 13.6 V), scaled to the block's cells.
CAL_LOW_V_PER_CELL = 11.0 / 6
CAL_HIGH_V_PER_CELL = 14.5 / 6
CAL_TEMPCO_V_PER_CELL = 13.6 / 6


def _uid(string: int, block: int, seed: int) -> bytes:
    return bytes([0x5C, 0x51, seed & 0xFF, string & 0xFF, 0, block & 0xFF, 0x12, 0x0C])


class SimModule:
    """One block's module on the virtual bus: the real firmware core, its board."""

    skips_replies = True  # the firmware ignores other devices' replies (responder)

    def __init__(self, index: int, string: int, block: int, core: Any, board: SimBoard):
        self.index = index
        self.string = string
        self.block = block
        self.core = core
        self.board = board
        self.latency_us = 600  # the module's processing time before a unicast reply
        self.ri_done_at_s = -1.0
        self.ri_load_a = 0.0  # the running capture's mean excitation current (A)
        # its capture and its recovery (BAND_V): the capture's end (the recovery lasts
        # RI_RECOVER_CAP_S after it at most), the deviation it must come back to
        # (within RI_BACK_V), and how far it was at the last sample
        self.ri_end_s = -1.0
        self.ri_pre_v = 0.0  # its deviation when the capture began
        self.ri_last_v = -1.0  # how far from it, RI_PROGRESS_S ago in its recovery ...
        self.ri_last_s = 0.0  # ... at this time
        self.board_c = 25.0
        self.unplugged = False
        self.has_probe = True
        self.probe_detached = False  # the probe hangs in the air beside its block
        self.frame_ms = 5000

    def on_bus_bytes(self, data: Any, end_us: int, bus: VirtualBus) -> None:
        core = self.core
        now_ms = (end_us // 1000) & TICKS_MAX
        n = core.bus_bytes(data, len(data), now_ms)
        m = core.bus_idle(now_ms)  # every delivery is followed by an idle line
        if m:
            n = m
        if n:
            delay = core.tx_delay_us or self.latency_us
            bus.transmit(self, bytes(core.tx[:n]), end_us + delay)


def site_config(sc: Scenario, balancing: bool) -> config.SiteConfig:
    """The manager's configuration for the scenario, as an operator would write it."""
    return config.parse_config(site_config_obj(sc, balancing))


def site_config_obj(sc: Scenario, balancing: bool) -> dict[str, Any]:
    """site.json's content for the scenario (the web interface edits it)."""
    strings = []
    for k in range(sc.strings):
        s: dict[str, Any] = {"modules": sc.blocks, "equalise": balancing}
        if sc.current_sensor and k < 8:  # 3 DIP switches: strings 1..8 only
            s["current_sensor"] = k + 1
        strings.append(s)
    obj: dict[str, Any] = {
        "site": ("simulated: %s" % sc.name)[:40],  # site names are at most 40 characters
        "baud": sc.baud,
        "chemistry": sc.profile,
        "variant": variants.by_code(sc.variant).id,
        "cells": BLOCK_TYPE[sc.block_type].n_cells,
        "strings": strings,
        "cycle_period_ms": int(sc.poll_period_s * 1000),
        "target_timeout_s": max(30, int(3 * sc.poll_period_s)),
        "io": {
            "breaker_trip": [{"box": 1, "relay": 1}],
            "alarm_relay": {"box": 1, "relay": 2},
            "ups_input": {"source": "box", "box": 1, "input": 1},
        },
    }
    if sc.hold_wh_day >= 0:
        obj["balance"] = {"hold_wh_day": sc.hold_wh_day}
    return obj


@dataclass
class TimelineEntry:
    t_s: float
    source: str  # "scenario" or "manager"
    text: str


@dataclass
class Series:
    """What the report needs over time (one sample per tick)."""

    t_s: list[float] = field(default_factory=list)
    max_dev_v: list[float] = field(default_factory=list)  # outside own Ri captures (BAND_V)
    spread_v: list[float] = field(default_factory=list)


class HostFlash(blockdev.SimFlash):
    """manager_fw's NOR flash in RAM, erased at C speed: the firmware's SimFlash sets a
    byte at a time (it allocates nothing under MicroPython), 0.35 CPU-s to erase the
    2.3 MB of a simulation's history and event log when it is built."""

    def _fill(self, start: int, end: int) -> None:
        self.data[start:end] = b"\xff" * (end - start)


class Simulation:
    def __init__(
        self,
        sc: Scenario,
        seed: int | None = None,
        tick_s: float = 5.0,
        balancing: bool | None = None,
        micropython: bool = False,
        interface_factor: float = 1.0,
        operator_addressing: bool = False,
    ) -> None:
        """``interface_factor`` multiplies every block's interface capacitance, the
        least certain parameter (the balancing band of tools/bench/bench_sim_band.py).
        ``operator_addressing``: modules from the box wait for an operator to start
        automatic addressing (the web interface), the installer presses as before."""
        self.sc = sc
        self.micropython = micropython
        self.seed = sc.seed if seed is None else seed
        self.tick_s = tick_s
        self.t_s = 0.0
        self.timeline: list[TimelineEntry] = []
        self.series = Series()
        # Swing of each block's deviation from its string's target (truth) from this
        # time on: shows whether the balancing oscillates once it has settled.  run()
        # sets it to the second half of the run unless the caller did.
        self.swing_from_s: float | None = None
        self._dev_lo: np.ndarray | None = None
        self._dev_hi: np.ndarray | None = None
        self._events = list(sc.events)
        self._event_log_seen = 0
        bt = BLOCK_TYPE[sc.block_type]
        if sc.reference_spread:
            p0 = prm.draw_blocks(
                bt,
                sc.strings,
                sc.blocks,
                self.seed,
                sc.age_years,
                impaired_blocks=sc.impaired_blocks,
            )
        else:
            p0 = prm.draw_blocks(
                bt, sc.strings, sc.blocks, self.seed, sc.age_years, spread=prm.NO_SPREAD
            )
        for ov in sc.overrides:
            s, b = ov["string"] - 1, ov["block"] - 1
            changes = {k: v for k, v in ov.items() if k not in ("string", "block", "shorted_cells")}
            if not changes:
                continue
            if "to_age_years" in changes:
                to = changes.pop("to_age_years")
                changes.update(prm.aged_block_changes(bt, float(p0.age_years[s, b]), to))
            try:
                prm.override_block(p0, s, b, **changes)
            except (ValueError, IndexError) as exc:
                raise ValueError(
                    "battery.overrides (string %d, block %d): %s" % (s + 1, b + 1, exc)
                ) from None
        if interface_factor != 1.0:
            prm.scale_interface(p0, interface_factor)
        # A centre-tapped UPS: each pair of strings is one series chain on one charger
        # (its two halves, the centre tap to neutral); the physics sees the chains, the
        # manager the strings.  Block b of string s is element (s // k, (s % k) * N + b)
        # of the physics' arrays: a plain reshape of them to (strings, blocks).
        self._k = 2 if sc.topology == "centre-tap" else 1
        self._shape = (sc.strings, sc.blocks)
        phys_shape = (sc.strings // self._k, sc.blocks * self._k)
        for f in dataclasses.fields(p0):
            arr = getattr(p0, f.name)
            if isinstance(arr, np.ndarray) and arr.shape == self._shape:
                setattr(p0, f.name, arr.reshape(phys_shape).copy())
        for ov in sc.overrides:
            cells = ov.get("shorted_cells", 0)
            if cells:
                self._short_cells(p0, ov["string"] - 1, ov["block"] - 1, cells)
        bus_of_string = [0] * phys_shape[0] if sc.topology == "parallel" else None
        limit = sc.current_limit_a if sc.current_limit_a else 0.1 * bt.capacity_ah
        charger = phy.reference_charger(
            float_v_per_cell=sc.float_v_per_cell,
            boost_v_per_cell=sc.boost_v_per_cell,
            current_limit_a=limit,
            mains_hz=sc.mains_hz,
            temp_comp_v_per_k_per_cell=-0.003 if sc.temp_comp else 0.0,
        )
        self.block_type = bt
        self.bank = phy.StringBank(p0, charger, bus_of_string, ambient_c=sc.ambient_c)
        self.ambient_c = sc.ambient_c
        self.bank.ambient_c = self._ambient(0.0)
        self.bank.temp_c = self.bank.ambient_c.copy()
        self.bank.settle_float()
        self.initial_v = self._v(self.bank.terminal_v).copy()
        self.outcome = judge.Outcome()
        self.balancing = sc.equalise if balancing is None else balancing
        # --- the bus
        self.bus = VirtualBus(sc.baud, self.seed)
        self.bus.bit_error_ppm = sc.bit_error_ppm
        self.bus.drop_byte_ppm = sc.drop_byte_ppm
        # --- modules
        variant_id = variants.by_code(sc.variant).id
        adc = ADC_KIND[sc.adc]
        vadc = fe.VADC_NAMES.index(sc.vadc)  # the block-voltage converter
        # The cores get one voltage frame per tick: they size their filter for that
        # period, so its lag in seconds is a board's (measure.filter_shift_for).
        frame_ms = int(round(tick_s * 1000))
        self.variant_id = variant_id
        self.modules: list[SimModule] = []
        self._capturing: list[SimModule] = []  # modules in an Ri capture
        self._ri_quiet: list[SimModule] = []  # ... or recovering from one (BAND_V)
        mp_tree = None
        if micropython:
            from stringcare.sim import mpmodules

            mp_tree = mpmodules.compiled_tree()
        for s in range(sc.strings):
            for b in range(sc.blocks):
                index = s * sc.blocks + b
                board = SimBoard(variant_id, self.seed * 1000 + index, adc, vadc)
                slots = sto.MemorySlots()
                seed_core = ModuleCore(_uid(s, b, self.seed), variant_id, adc, slots, vadc=vadc)
                if not sc.unaddressed:
                    seed_core.state.address = index + 1
                    seed_core.state.key = SIM_SITE_KEY  # learnt when it was addressed
                if sc.calibrated:
                    self._calibrate(seed_core, board)
                seed_core.store.save(seed_core.state)
                core: Any
                if mp_tree is not None:
                    core = mpmodules.MPCore(
                        _uid(s, b, self.seed),
                        variant_id,
                        adc,
                        slots.data[seed_core.store.newest],
                        mp_tree,
                        frame_ms,
                        vadc,
                    )
                else:
                    core = ModuleCore(
                        _uid(s, b, self.seed), variant_id, adc, slots, frame_ms=frame_ms, vadc=vadc
                    )
                m = SimModule(index, s, b, core, board)
                m.frame_ms = frame_ms
                m.has_probe = sc.probes and (s + 1, b + 1) not in sc.without_probe
                self.modules.append(m)
                self.bus.attach(m)
        # --- the manager, its current sensors and the relay/IO box
        self.config_obj = site_config_obj(sc, self.balancing)
        self.cfg = config.parse_config(self.config_obj)
        self.history = HostFlash(2 * 1024 * 1024)
        self.event_log = status.RecordingEventLog(HostFlash(256 * 1024))
        self.manager = ManagerCore(self.cfg, self.history, None, START_S,
                                   event_log=self.event_log, site_key=SIM_SITE_KEY)  # fmt: skip
        self.shell = SimManagerShell(self.manager, self.bus, start_s=START_S, step_ms=1000)
        self.sensors: list[simdev.CurrentSensor] = []
        if sc.current_sensor:
            for k in range(min(sc.strings, 8)):
                sensor = simdev.CurrentSensor(k + 1)
                self.sensors.append(sensor)
                self.bus.attach(ResponderNode(sensor, 400))
        self.relay_box = simdev.RelayBox(1, key=SIM_SITE_KEY)
        # The box's core verifies with shared/sha256 (a board allocates nothing); the
        # host's hashlib gives the same MACs (host_tests/dual/shared/
        # test_auth_sha256.py) for a fraction of the cost: the pure one was a sixth of a
        # simulation's CPU time (a RELAY_SET every 2 s)
        self.relay_box.mac = auth.Mac(SIM_SITE_KEY)
        self.bus.attach(ResponderNode(self.relay_box, 400))
        self.breaker_open = False
        self._sync_sensors()
        # Modules straight from the box: the manager runs automatic addressing while a
        # simulated installer walks the string pressing buttons in cabling order.
        self.addressing_job: mad.AutoAddressing | None = None
        self._installer_order: list[int] = []
        self._next_press_s = 0.0
        if sc.unaddressed:
            n = len(self.modules)
            if not operator_addressing:
                self.addressing_job = mad.AutoAddressing(1, n)
                self.manager.begin_setup(self.addressing_job, START_S)
            order = np.random.default_rng(self.seed + 1).permutation(n)
            self._installer_order = [int(i) for i in order]
            self._next_press_s = 20.0
        self.bleed_energy_j = np.zeros(self._shape)
        self.bleed_seconds = np.zeros(self._shape)
        self.max_block_temp_c = self._v(self.bank.temp_c).copy()
        self.max_board_temp_c = np.full(self._shape, sc.ambient_c)
        self.max_resistor_temp_c = np.full(self._shape, sc.ambient_c)  # the hot node
        self.wall_s = 0.0
        self._ri_true_nohm: dict[int, int] = {}

    # --- commissioning -------------------------------------------------------------

    def _calibrate(self, core: ModuleCore, board: SimBoard) -> None:
        """What an engineer does with `stringcare calibrate`: two reference voltages
        for the voltage channel, the board sensor against a thermometer, the voltage
        tempco with the board warmed, a reference resistor for Ri (docs/ri.md)."""
        bv = measure.BlockVoltage(self.variant_id, vadc=board.vadc)
        cells = self.block_type.n_cells
        lo, hi = CAL_LOW_V_PER_CELL * cells, CAL_HIGH_V_PER_CELL * cells
        tempco_v = CAL_TEMPCO_V_PER_CELL * cells
        raws = []
        for ref in (lo, hi):
            total = 0
            for _ in range(16):
                total += bv.raw_uv(board.voltage_frame_sum_x2(ref))
            raws.append(total // 16)
        # the supply as the engineer's meter reads it: a 5 1/2-digit meter's
        # uncertainty (tools/bench/bench_sim_life.py, docs/measurement.md)
        meter = random.Random(("engineer", self.seed, board.seed).__repr__())
        refs = [int(round(meter_reading_v(x, meter) * 1e6)) for x in (lo, hi)]
        offset, gain = measure.calibration_from_points(raws[0], refs[0], raws[1], refs[1])
        st = core.state
        st.cal_offset[0] = offset
        st.cal_gain_ppm[0] = gain
        # the board sensor against a reference thermometer at 25 degC
        # (`stringcare calibrate temperature`)
        temp = measure.Temperature(core.adc_kind)
        for _ in range(8):
            temp.push_frame(board.internal_sensor_frame_sum_x2(25.0))
        st.cal_offset[3] = 25000 - temp.board_temp_mc
        # the voltage tempco (`stringcare calibrate tempco`): one steady 13.6 V, the board
        # at 25 degC, then warmed to 55 degC; the module's readings in whole mV as
        # READ_MEAS reports them, its own (calibrated) board temperature
        cal_bv = measure.BlockVoltage(self.variant_id, offset, gain, vadc=board.vadc)
        points = []
        for board_c in (25.0, 55.0):
            temp = measure.Temperature(core.adc_kind, st.cal_offset[3])
            for _ in range(8):
                temp.push_frame(board.internal_sensor_frame_sum_x2(board_c))
            total_mv = 0
            for _ in range(TEMPCO_CAL_SAMPLES):
                uv = cal_bv.raw_uv(board.voltage_frame_sum_x2(tempco_v, board_c=board_c))
                total_mv += (uv + 500) // 1000
            points.append((total_mv / TEMPCO_CAL_SAMPLES, tempco_v * 1000, temp.board_temp_mc))
        st.cal_offset[CAL_TEMPCO] = points[0][2]
        st.cal_gain_ppm[CAL_TEMPCO] = calibrate.tempco_fit(points[0], points[1], points[0][2], 0)
        # Ri: a reference resistor in each gain range, inside the range's span (for the
        # 12 V variant: 0.86 and 35 mΩ; as the factory does, docs/ri.md)
        ri_refs = ri_values(variants.by_id(self.variant_id))
        for gain_range, r_ref in ((0, ri_refs[1]), (1, ri_refs[-2])):
            plan = ri.plan_for(self.variant_id, None, gain_range, core.adc_kind)
            v_codes, i_codes = board.ri_capture(plan, Block(r_ref))
            res = ri.evaluate(plan, v_codes, i_codes)
            if res.status == ri.RI_OK and res.ri_nohm:
                st.cal_gain_ppm[1 + gain_range] = int(round((r_ref * 1e9 / res.ri_nohm - 1) * 1e6))

    def scale_board_rth(self, factor: float) -> None:
        """Every module board's thermal resistance to ambient x factor (its time constant
        and the bleed resistor body's own rise unchanged): an experiment on the boards'
        heat path (docs/simulation.md, "The boards' share"), not a product figure."""
        if not factor > 0:
            raise ValueError("a board Rth factor must be > 0, not %r" % factor)
        for m in self.modules:
            m.board.thermal.rth_k_per_w *= factor

    # --- time ------------------------------------------------------------------------

    def now_s(self) -> int:
        return START_S + int(self.t_s)

    def now_ms(self) -> int:
        return int(self.t_s * 1000) & TICKS_MAX

    # --- the physics' arrays as the manager's strings ---------------------------------

    def _v(self, arr: np.ndarray) -> np.ndarray:
        """A physics array (chains x blocks) as (strings, blocks) (a view)."""
        return arr.reshape(self._shape)

    def _pi(self, string: int, block: int) -> tuple[int, int]:
        """Physics index of block `block` of string `string` (0-based)."""
        return string // self._k, (string % self._k) * self.sc.blocks + block

    def _short_cells(self, params: prm.BlockParams, string: int, block: int, cells: int) -> None:
        """Short `cells` cells of a block: a shorted cell stores and drops nothing (its
        plates touch), so the block is a block of fewer cells with the same plates."""
        s, b = self._pi(string, block)
        n = float(params.n_cells[s, b])
        if cells >= n:
            raise ValueError("cannot short %d of the %d cells of a block" % (cells, int(n)))
        params.n_cells[s, b] = n - cells
        params.r0_ohm[s, b] *= (n - cells) / n
        params.r1_ohm[s, b] *= (n - cells) / n
        for name in ("interface_f", "relax1_f", "relax2_f", "relax3_f"):
            getattr(params, name)[s, b] *= n / (n - cells)  # cells in series: C/n per block

    def _ambient(self, t_s: float) -> np.ndarray:
        """Air temperature at every block now (physics shape): the room, its daily
        swing (a cosine peaking at swing_peak_at) and the rack's vertical gradient
        (block 1 at the bottom, the last block at the top)."""
        sc = self.sc
        room = self.ambient_c
        if sc.daily_swing_k:
            phase = 2 * math.pi * (t_s - sc.swing_peak_s) / 86400.0
            room += sc.daily_swing_k / 2 * math.cos(phase)
        amb = np.full(self._shape, room)
        if sc.rack_gradient_k and sc.blocks > 1:
            amb += sc.rack_gradient_k * (np.arange(sc.blocks) / (sc.blocks - 1) - 0.5)
        return amb.reshape(self.bank.temp_c.shape if hasattr(self, "bank") else amb.shape)

    def _dt(self) -> float:
        calm = bool(np.all(self.bank.charger_mode == phy.MODE_FLOAT))
        return self.tick_s if calm else min(self.tick_s, 1.0)

    def step(self, until_s: float | None = None) -> None:
        """One tick; it ends at until_s at the latest (the end of a run)."""
        self._apply_events(self.t_s)  # everything due now, at its own time
        dt = self._dt()
        if until_s is not None and until_s - self.t_s < dt:
            dt = max(until_s - self.t_s, 0.001)
        if self._events and self._events[0].at_s < self.t_s + dt:
            dt = self._events[0].at_s - self.t_s  # end the tick where the next event is
        for m in self._capturing:  # and where an Ri capture ends: its module's load is
            if m.ri_done_at_s - self.t_s < dt:  # the capture's own for its length only
                dt = max(m.ri_done_at_s - self.t_s, 0.001)
        t_end = self.t_s + dt
        bank = self.bank
        bleed = np.zeros(self._shape)
        supply = np.zeros(self._shape)  # the modules' own supply current (frontend.py), captures
        terminal = self._v(bank.terminal_v)
        for m in self.modules:
            v_now = float(terminal[m.string, m.block])
            if not m.unplugged:
                supply[m.string, m.block] = m.board.supply_current_a(v_now)
            duty = m.core.duty
            if duty:
                bleed[m.string, m.block] = m.board.bleed_current_a(v_now, duty)
            elif m.ri_load_a and m.ri_done_at_s >= 0:  # a capture's own excitation
                supply[m.string, m.block] += m.ri_load_a  # (not balancing's bleed)
        amb_now = self._ambient(self.t_s + dt / 2)
        bank.step(dt, (bleed + supply).reshape(bank.terminal_v.shape), amb_now)
        terminal = self._v(bank.terminal_v)
        self.bleed_energy_j += bleed * terminal * dt
        self.bleed_seconds += (bleed > 0) * dt
        ripple = bank.ripple()
        rip_v = self._v(np.sqrt((ripple.block_voltage_v_rms**2).sum(axis=2)))
        self.t_s = t_end
        now_ms = self.now_ms()
        temp_c = self._v(bank.temp_c)
        ambient = self._v(amb_now)
        self._installer(dt)
        for m in self.modules:
            s, b = m.string, m.block
            v = float(terminal[s, b])
            board = m.board
            m.board_c = board.heat(dt, v, m.core.duty, float(ambient[s, b]))
            core = m.core
            # Ri first: a capture that ended gives the bleed back in this frame's
            # balancing step, one that starts takes it away in it.
            self._ri(m, ripple)
            core.temperature_frame(
                board.internal_sensor_frame_sum_x2(m.board_c),
                board.probe_frame_sum_x2(
                    None
                    if not m.has_probe
                    else float(ambient[s, b] if m.probe_detached else temp_c[s, b])
                ),
                now_ms,
            )
            core.voltage_frame(board.voltage_frame_sum_x2(v, float(rip_v[s, b]), m.board_c), now_ms)
            core.tick(now_ms, False)
        np.maximum(self.max_block_temp_c, temp_c, out=self.max_block_temp_c)
        for m in self.modules:
            if m.board_c > self.max_board_temp_c[m.string, m.block]:
                self.max_board_temp_c[m.string, m.block] = m.board_c
            if m.board.resistor_c > self.max_resistor_temp_c[m.string, m.block]:
                self.max_resistor_temp_c[m.string, m.block] = m.board.resistor_c
        self._sync_sensors()
        self.shell.run_until(int(self.t_s * 1e6))
        self._collect_events()
        self._sample()
        self.outcome.bleed_t_s.append(self.t_s)
        self.outcome.bleed_j.append(self.bleed_energy_j.sum(axis=1).tolist())

    def _installer(self, dt: float) -> None:
        """Press the next module's button (a 300 ms press) once it blinks fast red; a
        module that still has no address when its turn comes again (the job was stopped
        just after its press) is pressed again, as an installer would."""
        order = self._installer_order
        while order and self.modules[order[0]].core.state.address != 0:
            order.pop(0)  # addressed: on to the next one
        if not order or self.t_s < self._next_press_s:
            return
        m = self.modules[order[0]]
        if not m.core.state.addressing:
            return  # not in addressing mode yet: wait for the manager's broadcast
        t0 = int((self.t_s - dt) * 1000)
        for offset_ms, pressed in ((100, True), (150, True), (400, False), (450, False)):
            m.core.tick((t0 + offset_ms) & TICKS_MAX, pressed)
        self._next_press_s = self.t_s + 15.0
        self.timeline.append(
            TimelineEntry(
                self.t_s,
                "scenario",
                "installer presses the button of block %d of string %d"
                % (m.block + 1, m.string + 1),
            )
        )

    def _ri(self, m: SimModule, ripple: phy.Ripple) -> None:
        core = m.core
        now_ms = self.now_ms()
        if m.ri_done_at_s >= 0:
            if self.t_s >= m.ri_done_at_s - 1e-6:
                m.ri_done_at_s = -1.0
                self._capturing.remove(m)
                plan = core.ri_done(now_ms)
                if plan is not None:
                    self._capture(m, plan, ripple)
            return
        plan = core.ri_pending(now_ms)
        if plan is not None:
            self._capture(m, plan, ripple)

    def _capture(self, m: SimModule, plan: ri.RiPlan, ripple: phy.Ripple) -> None:
        prm_ = self.bank.params
        s, b = m.string, m.block
        r0 = float(self._v(prm_.r0_ohm)[s, b])
        block = Block(r0, float(self._v(prm_.r1_ohm)[s, b]), float(self._v(prm_.tau1_s)[s, b]))
        self._ri_true_nohm[m.index] = int(r0 * 1e9)
        comps = []
        for k, f in enumerate(ripple.frequencies_hz):
            amp = float(ripple.string_current_a_rms[s // self._k, k]) * math.sqrt(2)
            comps.append((int(round(f / self.sc.mains_hz)), amp, 0.7 * k))
        rip = Ripple(self.sc.mains_hz, comps)
        v_codes, i_codes = m.board.ri_capture(plan, block, rip, board_c=m.board_c)
        chunk = 256
        for i in range(0, len(v_codes), chunk):
            vb = v_codes[i : i + chunk]
            m.core.ri_feed(vb, i_codes[i : i + chunk], len(vb))
        m.ri_done_at_s = self.t_s + plan.duration_ms() / 1000.0
        m.ri_load_a = m.board.excitation_mean_a(plan)
        if m not in self._ri_quiet:  # a new capture (not the next plan of one)
            v = self._v(self.bank.terminal_v)[s]
            m.ri_pre_v = float(v[b] - v.mean())
            self._ri_quiet.append(m)
        m.ri_end_s = m.ri_done_at_s
        m.ri_last_v = -1.0
        if m not in self._capturing:
            self._capturing.append(m)

    def _new_module(self, m: SimModule) -> None:
        """The block came with its own module (a new uid), addressed by the installer
        to the old one's address and calibrated at its factory (docs/simulation.md)."""
        if self.micropython:
            raise ValueError("block_replaced with new_module: not in MicroPython mode")
        uid = bytearray(_uid(m.string, m.block, self.seed))
        uid[4] = (uid[4] + 1) & 0xFF  # another serial number
        old = m.board
        board = SimBoard(self.variant_id, self.seed * 1000 + m.index + 500, old.adc_kind, old.vadc)
        slots = sto.MemorySlots()
        seed_core = ModuleCore(bytes(uid), self.variant_id, old.adc_kind, slots, vadc=old.vadc)
        seed_core.state.address = m.core.state.address
        if self.sc.calibrated:
            self._calibrate(seed_core, board)
        seed_core.store.save(seed_core.state)
        m.core = ModuleCore(
            bytes(uid), self.variant_id, old.adc_kind, slots, frame_ms=m.frame_ms, vadc=old.vadc
        )
        m.board = board
        m.board_c = self.ambient_c
        if m in self._capturing:
            self._capturing.remove(m)
        if m in self._ri_quiet:  # a new block's deviation is its own, not a capture's
            self._ri_quiet.remove(m)
        m.ri_done_at_s = -1.0

    # --- events ------------------------------------------------------------------------

    def _apply_events(self, until_s: float) -> None:
        while self._events and self._events[0].at_s <= until_s:
            ev = self._events.pop(0)
            self._apply(ev)
            self.timeline.append(TimelineEntry(ev.at_s, "scenario", ev.describe()))
            self.outcome.scenario_events.append((ev.at_s, ev.type))

    def _apply(self, ev: Event) -> None:
        a = ev.args
        bank = self.bank
        if ev.type == "mains_fail":
            bank.mains_fail(a["load_w"])
        elif ev.type == "mains_restore":
            bank.mains_restore()
        elif ev.type == "boost":
            bank.set_boost(a["on"])
        elif ev.type == "ambient":
            self.ambient_c = a["temp_c"]  # the room; the swing and gradient stay
        elif ev.type == "heat_block":
            bank.set_external_heat(*self._pi(a["string"] - 1, a["block"] - 1), a["watts"])
        elif ev.type == "thermal_runaway":
            s, b = self._pi(a["string"] - 1, a["block"] - 1)
            prm.override_block(
                bank.params, s, b, **prm.thermal_runaway_changes(a.get("short_s", 0.03))
            )
            bank.params_changed()
        elif ev.type == "cell_short":
            self._short_cells(bank.params, a["string"] - 1, a["block"] - 1, a.get("cells", 1))
            bank.params_changed()
        elif ev.type == "block_aged":
            s, b = self._pi(a["string"] - 1, a["block"] - 1)
            changes = prm.aged_block_changes(
                self.block_type, float(bank.params.age_years[s, b]), a["to_age_years"]
            )
            prm.override_block(bank.params, s, b, **changes)
            bank.params_changed()
        elif ev.type == "block_replaced":
            new = prm.draw_blocks(
                self.block_type, 1, 1, self.seed + 77, a.get("age_years", 0.0), spread=prm.NO_SPREAD
            )
            new.initial_soc[0, 0] = a.get("soc", 1.0)
            bank.replace_block(*self._pi(a["string"] - 1, a["block"] - 1), new)
            if a.get("new_module", False):
                self._new_module(self.modules[(a["string"] - 1) * self.sc.blocks + a["block"] - 1])
        elif ev.type in ("module_unplugged", "module_replugged"):
            m = self.modules[(a["string"] - 1) * self.sc.blocks + a["block"] - 1]
            m.unplugged = ev.type == "module_unplugged"
            if m.unplugged:
                self.bus.unplug(m)
            else:
                self.bus.replug(m)
        elif ev.type == "probe_detached":
            self.modules[(a["string"] - 1) * self.sc.blocks + a["block"] - 1].probe_detached = True
        elif ev.type == "noise_burst":
            start = int(self.t_s * 1e6)
            self.bus.noise_bursts.append([start, start + int(a["duration"] * 1e6)])
        elif ev.type == "balancing":
            self.balancing = a["on"]
            for k in range(self.sc.strings):
                self.manager.strings.enabled[k] = 1 if a["on"] else 0
        elif ev.type == "ups_signal":
            # the UPS's "on battery" contact on input 1 of the relay/IO box (closed = on)
            if a["on"]:
                self.relay_box.inputs |= 1
            else:
                self.relay_box.inputs &= ~1

    def _sync_sensors(self) -> None:
        for k, sensor in enumerate(self.sensors):
            current = float(self.bank.string_current_a[k // self._k])
            sensor.current_ma = int(round(current * 1000))
        # relay 1 of box 1 opens the battery breaker (thermal runaway): the string is
        # cut off from the charger and the load
        if self.relay_box.relays & 1 and not self.breaker_open:
            self.breaker_open = True
            self.outcome.trip_s = self.t_s
            self.outcome.block_temp_at_trip_c = float(self.bank.temp_c.max())
            self.bank.mains_fail(0.0)
            self.timeline.append(
                TimelineEntry(self.t_s, "scenario", "battery breaker opened by the manager")
            )

    def _collect_events(self) -> None:
        for e in self.event_log.take_new():
            text = status.event_text(self.manager, e)
            t = float(e.time_s - START_S)
            self.timeline.append(TimelineEntry(t, "manager", text))
            s = b = 0
            addresses = self.manager.layout.addresses
            # (an addressing event's module field is the address it concerns, not an index)
            if e.module != mev.NO_MODULE and e.code != mev.EV_ADDRESSING:
                a = addresses[e.module] if e.module < len(addresses) else 0
                if a:
                    s, b = (a - 1) // self.sc.blocks + 1, (a - 1) % self.sc.blocks + 1
            elif e.string != mev.NO_STRING:
                s = e.string + 1
            self.outcome.events.append((t, e.code, e.arg, s, b, e.value, getattr(e, "extra", 0)))

    # --- figures -------------------------------------------------------------------------

    def _sample(self) -> None:
        v = self._v(self.bank.terminal_v)
        target = v.mean(axis=1, keepdims=True)
        dev = v - target
        quiet = None  # blocks in their own Ri capture or coming back from it (BAND_V)
        if self._ri_quiet:
            self._ri_quiet = [m for m in self._ri_quiet if self._recovering(m, dev)]
            if self._ri_quiet:
                quiet = np.zeros(dev.shape, dtype=bool)
                for m in self._ri_quiet:
                    quiet[m.string, m.block] = True
        self.series.t_s.append(self.t_s)
        judged = np.abs(dev) if quiet is None else np.where(quiet, 0.0, np.abs(dev))
        self.series.max_dev_v.append(float(judged.max()))
        self.series.spread_v.append(float((v.max(axis=1) - v.min(axis=1)).max()))
        if self.swing_from_s is not None and self.t_s >= self.swing_from_s:
            if self._dev_lo is None or self._dev_hi is None:
                self._dev_lo = dev.copy()
                self._dev_hi = dev.copy()
            else:  # a quiet block keeps its extremes (np.where: it proposes them again)
                lo = dev if quiet is None else np.where(quiet, self._dev_lo, dev)
                hi = dev if quiet is None else np.where(quiet, self._dev_hi, dev)
                np.minimum(self._dev_lo, lo, out=self._dev_lo)
                np.maximum(self._dev_hi, hi, out=self._dev_hi)

    def _recovering(self, m: SimModule, dev: Any) -> bool:
        """Whether m's block is still in its Ri capture or recovering from it (BAND_V)."""
        if self.t_s < m.ri_end_s:
            return True
        d = abs(float(dev[m.string, m.block]) - m.ri_pre_v)
        closer = True
        if m.ri_last_v < 0:
            m.ri_last_v, m.ri_last_s = d, self.t_s  # the recovery's first sample
        elif self.t_s - m.ri_last_s >= RI_PROGRESS_S:
            closer = d < m.ri_last_v
            m.ri_last_v, m.ri_last_s = d, self.t_s
        return self.t_s < m.ri_end_s + RI_RECOVER_CAP_S and d > RI_BACK_V and closer

    def settled_swing_mv(self) -> float | None:
        """Largest peak-to-peak swing of one block's deviation from its string's
        target since swing_from_s (mV; the physics' true voltages)."""
        if self._dev_lo is None or self._dev_hi is None:
            return None
        return round(float((self._dev_hi - self._dev_lo).max()) * 1000, 2)

    # --- the manager's view (status page, report) -----------------------------------------

    def _measured_mv(self, i: int) -> int | None:
        a = self.manager.layout.addresses[i]
        if self.manager.poller.state[a] in (pl.ST_NOT_POLLED, pl.ST_NEVER):
            return None
        return int(self.manager.poller.voltage_mv[a])

    def _ri_nohm(self, i: int) -> int | None:
        tr = self.manager.ri_trend
        a = self.manager.layout.addresses[i]
        if tr is None or tr.last_s[a] < 0:
            return None
        return int(tr.last_nohm[a])

    def snapshot(self, final: bool = False) -> dict[str, Any]:
        """What the manager's status page shows: the manager's knowledge, not the truth."""
        events = [{"time": _clock(e.t_s), "text": e.text} for e in self.timeline[-40:]]
        clock = "simulated %s%s" % (_clock(self.t_s), " (ended)" if final else "")
        return status.snapshot(self.manager, clock, events, self.t_s)

    def close(self) -> None:
        """Release what the run holds (MicroPython module processes)."""
        for m in self.modules:
            close = getattr(m.core, "close", None)
            if close is not None:
                close()

    def converge_h(self) -> float | None:
        """Hours until every block stays within +-10 mV of its string's target (truth)."""
        last_out = None
        for t, d in zip(self.series.t_s, self.series.max_dev_v, strict=True):
            if d > BAND_V:
                last_out = t
        if last_out is None:
            return 0.0
        if last_out >= self.series.t_s[-1]:
            return None  # never settled in this run
        return last_out / 3600.0

    def run(
        self,
        duration_s: float,
        speed: float | None = None,
        progress: Callable[[Simulation], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress_every_s: float = 0.5,
    ) -> None:
        """Run for duration_s of simulated time; speed None = as fast as possible,
        else simulated seconds per wall second."""
        t0_wall = time.monotonic()
        t0_sim = self.t_s
        end = self.t_s + duration_s
        if self.swing_from_s is None:
            self.swing_from_s = t0_sim + duration_s / 2
        last_progress = 0.0
        while self.t_s < end - 1e-9:
            if should_stop is not None and should_stop():
                break
            self.step(end)
            now = time.monotonic()
            if speed:
                ahead = (self.t_s - t0_sim) / speed - (now - t0_wall)
                if ahead > 0:
                    time.sleep(min(ahead, 0.5))
            if progress is not None and now - last_progress >= progress_every_s:
                last_progress = now
                self.wall_s += 0.0
                progress(self)
        self.wall_s += time.monotonic() - t0_wall

    def report(self) -> dict[str, Any]:
        v = self._v(self.bank.terminal_v)
        mgr = self.manager
        blocks = []
        lay = mgr.layout
        for m in self.modules:
            s, b = m.string, m.block
            # the manager knows a block by its address (after addressing: the order the
            # installer pressed the buttons in), not by its place in the string
            a = m.core.state.address
            i = lay.module(a) if a else -1
            ri_nohm = self._ri_nohm(i) if i >= 0 else None
            blocks.append(
                {
                    "label": lay.label(i) if i >= 0 else "unaddressed",
                    "address": a,
                    "string": s + 1,
                    "block": b + 1,
                    "initial_v": round(float(self.initial_v[s, b]), 4),
                    "final_v": round(float(v[s, b]), 4),
                    "final_dev_mv": round(float(v[s, b] - v[s].mean()) * 1000, 1),
                    "measured_mv": self._measured_mv(i) if i >= 0 else None,
                    "temp_max_c": round(float(self.max_block_temp_c[s, b]), 2),
                    "board_temp_max_c": round(float(self.max_board_temp_c[s, b]), 2),
                    "resistor_temp_max_c": round(float(self.max_resistor_temp_c[s, b]), 2),
                    "bleed_wh": round(float(self.bleed_energy_j[s, b]) / 3600, 3),
                    "bleed_h": round(float(self.bleed_seconds[s, b]) / 3600, 3),
                    "ri_true_mohm": round(float(self._v(self.bank.params.r0_ohm)[s, b]) * 1000, 3),
                    "ri_measured_mohm": None if ri_nohm is None else round(ri_nohm / 1e6, 3),
                    "soc": round(float(self._v(self.bank.soc)[s, b]), 4),
                }
            )
        conv = self.converge_h()
        return {
            "scenario": self.sc.name,
            "seed": self.seed,
            "duration_h": round(self.t_s / 3600, 3),
            "balancing": self.balancing,
            "strings": self.sc.strings,
            "blocks_per_string": self.sc.blocks,
            "converge_h": None if conv is None else round(conv, 3),
            "final_max_dev_mv": round(self.series.max_dev_v[-1] * 1000, 2)
            if self.series.max_dev_v
            else None,
            "initial_spread_v": round(
                float((self.initial_v.max(axis=1) - self.initial_v.min(axis=1)).max()), 3
            ),
            "final_spread_v": round(float((v.max(axis=1) - v.min(axis=1)).max()), 4),
            "bleed_energy_wh": round(float(self.bleed_energy_j.sum()) / 3600, 2),
            "swing_from_h": None
            if self.swing_from_s is None
            else round(self.swing_from_s / 3600, 3),
            "settled_swing_mv": self.settled_swing_mv(),
            "blocks": blocks,
            "timeline": [
                {"t_h": round(e.t_s / 3600, 4), "source": e.source, "event": e.text}
                for e in self.timeline
            ],
            "bus": {
                "frames": self.bus.frames,
                "collisions": self.bus.collisions,
                "crc_errors_at_manager": mgr.master.deframer.crc_errors,
            },
        }


def _clock(t_s: float) -> str:
    t = int(t_s)
    return "%dd %02d:%02d:%02d" % (t // 86400, t % 86400 // 3600, t % 3600 // 60, t % 60)


BOARD_RTH_ENV = "STRINGCARE_BOARD_RTH_SCALE"


def board_rth_scale_from_env() -> float | None:
    """The benches' board experiment: STRINGCARE_BOARD_RTH_SCALE=0.3 runs every module
    board at 0.3 x its thermal resistance (Simulation.scale_board_rth); None if unset."""
    raw = os.environ.get(BOARD_RTH_ENV, "").strip()
    if not raw:
        return None
    try:
        factor = float(raw)
    except ValueError:
        factor = math.nan
    if not factor > 0 or math.isinf(factor):
        raise ValueError(
            "%s must be a number > 0 (the board thermal resistance factor, e.g. 0.3), "
            "not %r; unset it for the boards as modelled" % (BOARD_RTH_ENV, raw)
        )
    return factor


def apply_board_rth_from_env(sim: Simulation) -> float | None:
    """The board experiment on `sim` if STRINGCARE_BOARD_RTH_SCALE is set; its factor."""
    factor = board_rth_scale_from_env()
    if factor is not None:
        sim.scale_board_rth(factor)
    return factor


def board_rth_note(factor: float) -> str:
    """The progress line of a bench run under the board experiment."""
    return (
        "EXPERIMENT: every board at %g x its thermal resistance (%s): not a product figure "
        '(docs/simulation.md, "The boards\' share")' % (factor, BOARD_RTH_ENV)
    )


def greedy_converge_h(sim: Simulation, limit_h: float = 48.0, dt_s: float = 5.0) -> float | None:
    """The physical reference: the same string from the same start with full bleed on
    every block above its string's average (policy.greedy_bleed) and perfect knowledge
    of the voltages; hours until every block is first within +-10 mV."""
    bank = phy.StringBank(
        sim.bank.params,
        sim.bank.charger,
        list(sim.bank.bus_of_string) if sim.bank.bus_count < len(sim.bank.bus_of_string) else None,
        ambient_c=sim.sc.ambient_c,
    )
    bank.settle_float()
    t = 0.0
    while t < limit_h * 3600:
        v = bank.terminal_v
        if float(np.abs(v - v.mean(axis=1, keepdims=True)).max()) <= BAND_V:
            return t / 3600
        bank.step(dt_s, greedy_bleed(v, sim.block_type.module_bleed_a))
        t += dt_s
    return None
