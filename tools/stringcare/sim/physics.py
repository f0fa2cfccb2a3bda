"""Battery-string physics: S strings x N lead-acid blocks in series, chargers, loads.

Host code (CPython + numpy).  The model, its equations and every parameter's source are
in docs/simulation.md; this module is the implementation.  Sign convention: current is
positive when it charges the battery.  Units are SI, named in every attribute.

Per step (:meth:`StringBank.step`) the caller gives dt, the bleed current each module
draws from its block's terminals, and the ambient temperature.  The bank solves, per
DC bus, the string currents that make the sum of block voltages equal the bus voltage
(charger in constant voltage, its current limit, or a constant-power load in a mains
failure), then advances every block's states with exponential / linearised-implicit
updates, so any dt from 0.1 s to 60 s is stable.

Topology: each string has its own charger by default (``bus_of_string = [0, 1, ...]``),
which is how a string with its own rectifier and monitoring behaves.  Strings that share
one rectifier (parallel strings of one UPS) are given the same bus number: they then see
one bus voltage, share one current limit and one load, and their currents split by the
strings' own voltages and resistances.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from stringcare.sim.params import (
    BOOST_V_PER_CELL,
    FLOAT_REF_TEMP_C,
    FLOAT_REF_V_PER_CELL,
    BlockParams,
    FloatArray,
)

LN10 = math.log(10.0)
KELVIN = 273.15

# Charger modes (per bus), in charger_mode.
MODE_OFF = 0  # mains failed: charger off; the battery feeds the load (or rests)
MODE_FLOAT = 1  # constant voltage at the float setpoint
MODE_BOOST = 2  # constant voltage at the boost setpoint
MODE_CURRENT_LIMIT = 3  # charger at its current limit, voltage below its setpoint
MODE_NAMES = ("off", "float", "boost", "current-limit")

# Load state (per bus), in load_state.
LOAD_MAINS = 0  # mains present: the rectifier feeds the load, the battery does not
LOAD_ON_BATTERY = 1  # mains failed: constant-power load on the battery
LOAD_SHED = 2  # the UPS shut the load off (end voltage reached); latched until mains return
LOAD_NAMES = ("mains", "on-battery", "shed")

_EXP_LIMIT = 40.0

# Bounds for a collapsed or reversed block (docs/simulation.md, "Collapse and
# reversal").  A block driven past empty by its string's current reverses: gas
# evolution on the exhausted plates carries the current at about -1.8 V per cell at
# 0.1 C (Tafel 0.125 V/decade, like the float side reactions), so a reversed 12 V
# block reads about -11 V under a UPS load, not -40 V and beyond.  Order of
# magnitude from D. Berndt, "Maintenance-Free Batteries", 3rd ed. (2003), on cell
# reversal; no tighter source.  Once the current stops, a reversed interface relaxes
# back towards 0 V through the plates (time constant REVERSAL_RELAX_S, assumed).
REVERSAL_V_PER_CELL = 1.8
REVERSAL_CURRENT_PER_AH = 0.1
REVERSAL_RELAX_S = 600.0


@dataclass(frozen=True)
class ChargerParams:
    """A UPS rectifier / battery charger (docs/simulation.md, "Charger")."""

    float_v_per_cell: float = FLOAT_REF_V_PER_CELL
    boost_v_per_cell: float = BOOST_V_PER_CELL  # the VRLA profile's
    current_limit_a: float = 10.0  # 0.1 C10 of a 100 Ah string
    temp_comp_v_per_k_per_cell: float = -0.003  # 0 disables compensation
    temp_comp_ref_c: float = 25.0
    temp_comp_range_c: tuple[float, float] = (0.0, 45.0)  # probe clamp; no source: chosen
    end_v_per_cell: float = 1.75  # the UPS sheds its load below this on battery
    mains_hz: float = 50.0
    ripple_multiple: int = 2  # ripple fundamental = 2 x mains (single-phase bridge)
    # at 1, 2, 3 x fundamental; no source for the values: chosen inside the 0.05 C rms
    # limit of EN IEC 62485-2 (docs/simulation.md, "Parameters without a source")
    ripple_current_a_rms: tuple[float, ...] = (1.5, 0.5, 0.2)
    wiring_ohm: float = 0.010  # string cabling and fuses, per string; an estimate


def reference_charger(**changes: Any) -> ChargerParams:
    """The reference string's rectifier: float 2.27 V/cell, current limit 0.1 C10 (4 A
    for the 40 Ah blocks), -3 mV/cell/K compensation, 50 Hz mains.  Keyword arguments
    replace fields of :class:`ChargerParams`."""
    return replace(ChargerParams(current_limit_a=4.0), **changes)


@dataclass
class Ripple:
    """Charger ripple seen by the blocks: ``frequencies_hz`` (K,), the ripple current of
    every string (S, K) and the ripple voltage across every block (S, N, K), both rms."""

    frequencies_hz: FloatArray
    string_current_a_rms: FloatArray
    block_voltage_v_rms: FloatArray


class StringBank:
    """S strings of N blocks; one charger and one load per DC bus."""

    def __init__(
        self,
        params: BlockParams,
        charger: ChargerParams | None = None,
        bus_of_string: Sequence[int] | None = None,
        ambient_c: float = 25.0,
    ) -> None:
        self.params = params.copy()
        self.charger = charger if charger is not None else ChargerParams()
        s_count, n_count = self.params.shape
        if bus_of_string is None:
            bus_of_string = list(range(s_count))
        if len(bus_of_string) != s_count:
            raise ValueError(
                "bus_of_string has %d entries for %d strings" % (len(bus_of_string), s_count)
            )
        buses = np.asarray(bus_of_string, dtype=np.intp)
        if buses.min() < 0 or set(buses.tolist()) != set(range(int(buses.max()) + 1)):
            raise ValueError("bus numbers must be 0..B-1 with no gap, got %s" % list(buses))
        self.bus_of_string = buses
        self.bus_count = int(buses.max()) + 1
        self._strings_per_bus = np.bincount(buses, minlength=self.bus_count).astype(float)
        cells = self.params.n_cells.sum(axis=1)
        for b in range(self.bus_count):
            on_bus = cells[buses == b]
            if np.ptp(on_bus) > 0:
                raise ValueError(
                    "strings on bus %d have different cell counts %s; parallel strings "
                    "must match" % (b, sorted(set(on_bus.tolist())))
                )
        self.cells_per_bus = np.array(
            [cells[buses == b][0] for b in range(self.bus_count)], dtype=float
        )
        shape = (s_count, n_count)
        self.time_s = 0.0
        # --- states
        self.soc = self.params.initial_soc.astype(float).copy()  # total charge / capacity
        self.kibam_delta = np.zeros(shape)  # bound minus available well level
        self.eta_v = np.zeros(shape)  # interface overvoltage over the open-circuit voltage
        # Voltages of the slow relaxation stages behind the interface (one per stage).
        self.relax_v = np.zeros((3,) + shape)
        self.v_rc = np.zeros(shape)
        self.temp_c = np.full(shape, float(ambient_c))
        # --- inputs held between steps
        self.bleed_a = np.zeros(shape)
        self.external_heat_w = np.zeros(shape)
        self.ambient_c = np.full(shape, float(ambient_c))
        # --- per-bus control
        self.charger_mode = np.full(self.bus_count, MODE_FLOAT, dtype=np.intp)
        self.boost_on = np.zeros(self.bus_count, dtype=bool)
        self.mains_on = np.ones(self.bus_count, dtype=bool)
        self.load_w = np.zeros(self.bus_count)
        self.load_a = np.zeros(self.bus_count)  # constant-current load instead (test rigs)
        self.load_state = np.full(self.bus_count, LOAD_MAINS, dtype=np.intp)
        self._shed_request = np.zeros(self.bus_count, dtype=bool)
        # --- outputs (filled by _refresh_outputs / step)
        self.string_current_a = np.zeros(s_count)
        self.bus_voltage_v = np.zeros(self.bus_count)
        self.charger_setpoint_v = np.zeros(self.bus_count)
        self.charger_current_a = np.zeros(self.bus_count)
        self.block_current_a = np.zeros(shape)
        self.terminal_v = np.zeros(shape)
        self.main_current_a = np.zeros(shape)
        self.side_current_a = np.zeros(shape)
        self.short_current_a = np.zeros(shape)
        self.heat_w = np.zeros(shape)
        self._faradaic_conductance_s = np.zeros(shape)
        self._dt_cache: tuple[Any, ...] | None = None
        self._derive_constants()
        self._refresh_outputs()

    # ------------------------------------------------------------------ setup

    def _derive_constants(self) -> None:
        p = self.params
        n = p.n_cells
        self._kside = LN10 / (n * p.tafel_v_per_decade_per_cell)  # 1/V per block
        self._vref = n * FLOAT_REF_V_PER_CELL
        self._ocv_e = n * p.ocv_empty_v_per_cell
        self._ocv_span = n * (p.ocv_full_v_per_cell - p.ocv_empty_v_per_cell)
        self._ocv_tc = n * p.ocv_temp_coeff_v_per_k_per_cell
        self._two_n_beta = 2.0 * n * p.main_beta_v_per_cell
        self._cap_as = p.capacity_ah / p.c10_fraction * 3600.0  # stored charge, A s
        self._avail_as = p.kibam_c * self._cap_as  # available well, A s
        self._side_i0 = p.float_current_a
        self._rev_v = n * REVERSAL_V_PER_CELL
        self._rev_i0 = REVERSAL_CURRENT_PER_AH * p.capacity_ah
        self._relax_g = p.interface_f / REVERSAL_RELAX_S
        self._dt_cache = None

    def copy_state(self) -> dict[str, FloatArray]:
        """Every state and output array (copies): for determinism checks and snapshots."""
        names = (
            "soc",
            "kibam_delta",
            "eta_v",
            "relax_v",
            "v_rc",
            "temp_c",
            "terminal_v",
            "block_current_a",
            "main_current_a",
            "side_current_a",
            "short_current_a",
            "string_current_a",
            "bus_voltage_v",
            "heat_w",
        )
        return {k: np.array(getattr(self, k), copy=True) for k in names}

    # ------------------------------------------------------------------ physics

    def open_circuit_v(self) -> FloatArray:
        """Open-circuit voltage (V) at the plates' acid concentration, per block."""
        soc_a = np.clip(self.soc - (1.0 - self.params.kibam_c) * self.kibam_delta, 0.0, 1.0)
        return self._ocv_e + self._ocv_span * soc_a + self._ocv_tc * (self.temp_c - 25.0)

    def _plate_soc(self) -> FloatArray:
        soc_a = self.soc - (1.0 - self.params.kibam_c) * self.kibam_delta
        return np.maximum(np.minimum(soc_a, 1.0), 0.0)

    def _faradaic_fixed(self, soc_a: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """The terms of _faradaic that do not depend on the overvoltage (temperature and
        charge are held through a step's passes and a settling's bisection): computed
        once, the same operations in the same order, so the results are bit-identical."""
        p = self.params
        dtemp = self.temp_c - FLOAT_REF_TEMP_C
        side_t = p.side_temp_coeff_per_k * dtemp
        g_short = p.short_s * np.exp(np.minimum(p.short_temp_coeff_per_k * dtemp, _EXP_LIMIT))
        return side_t, g_short, 1.0 - soc_a

    def _faradaic(
        self,
        eta: FloatArray,
        ocv: FloatArray,
        soc_a: FloatArray,
        dt: float,
        fixed: tuple[FloatArray, FloatArray, FloatArray] | None = None,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
        """Currents through the interface's faradaic branches at overvoltage ``eta`` and
        their conductances: (total, d total/d eta, main, side, short, d main/d eta).
        ``fixed``: _faradaic_fixed(soc_a) for the present temperatures, if known."""
        p = self.params
        side_t, g_short, charge_room = fixed if fixed is not None else self._faradaic_fixed(soc_a)
        vint = ocv + eta
        side_exp = np.minimum(self._kside * (vint - self._vref) + side_t, _EXP_LIMIT)
        i_side = self._side_i0 * np.exp(side_exp)
        g_side = i_side * self._kside
        i_short = g_short * vint
        # Reversal: gas evolution below -REVERSAL_V_PER_CELL, and the relaxation of a
        # negative interface voltage (both only when the interface is below 0 V);
        # lumped with the short (they are its kind: current that stores nothing).
        rev_exp = np.minimum(self._kside * (-vint - self._rev_v), _EXP_LIMIT)
        i_rev_mag = self._rev_i0 * np.exp(rev_exp)
        negative = vint < 0.0
        g_relax = np.where(negative, self._relax_g, 0.0)
        i_short = i_short - i_rev_mag + g_relax * vint
        g_short = g_short + i_rev_mag * self._kside + g_relax
        # Main reaction: Butler-Volmer, its exchange current scaled by the material left
        # to react (PbSO4 on charge, Pb/PbO2 on discharge), implicit in that material.
        x = np.maximum(np.minimum(eta / self._two_n_beta, _EXP_LIMIT), -_EXP_LIMIT)
        ex = np.exp(x)
        inv = 1.0 / ex
        s2 = ex - inv  # 2 sinh
        ds2 = (ex + inv) / self._two_n_beta  # d(2 sinh)/d eta
        charging = x >= 0.0
        headroom = np.where(charging, charge_room, soc_a)
        width = np.where(charging, p.acceptance_width, p.depletion_width)
        i0 = p.main_exchange_a
        stiff = i0 * np.abs(s2) * dt / self._avail_as
        denom = width + headroom + stiff
        i_main = i0 * s2 * headroom / denom
        g_main = i0 * ds2 * headroom * (width + headroom) / (denom * denom)
        total = i_main + i_side + i_short
        return total, g_main + g_side + g_short, i_main, i_side, i_short, g_main

    def step(
        self,
        dt_s: float,
        bleed_a: FloatArray | None = None,
        ambient_c: float | FloatArray | None = None,
    ) -> None:
        """Advance by ``dt_s`` seconds.  ``bleed_a`` (S, N): current each module draws
        from its block (>= 0; held from the previous step when None).  ``ambient_c``:
        scalar or (S, N) air temperature around the blocks (held when None)."""
        if not (dt_s > 0.0 and math.isfinite(dt_s)):
            raise ValueError("dt_s must be a positive number of seconds, got %r" % dt_s)
        if bleed_a is not None:
            bleed = np.array(bleed_a, dtype=float)  # a copy: held until the next input
            if bleed.shape != self.bleed_a.shape:
                raise ValueError(
                    "bleed_a has shape %s, the bank is %s" % (bleed.shape, self.bleed_a.shape)
                )
            if np.any(bleed < 0.0) or not np.all(np.isfinite(bleed)):
                raise ValueError("bleed_a must be finite and >= 0 (a module only draws current)")
            self.bleed_a = bleed
        if ambient_c is not None:
            self.ambient_c = np.broadcast_to(np.asarray(ambient_c, dtype=float), self.soc.shape)
        dt = float(dt_s)
        p = self.params
        bleed = self.bleed_a
        if self._dt_cache is None or self._dt_cache[0] != dt:
            a1 = np.exp(-dt / p.tau1_s)
            kk = p.kibam_k_per_s
            decay = np.exp(-kk * dt)
            th_decay = np.exp(-dt / (p.thermal_resistance_k_per_w * p.thermal_capacity_j_per_k))
            self._dt_cache = (
                dt,
                a1,
                p.r1_ohm * (1.0 - a1),
                p.interface_f / dt,
                decay,
                (1.0 - decay) / kk / self._avail_as,
                th_decay,
                p.r0_ohm + p.r1_ohm * (1.0 - a1),
                self._relax_terms(dt),
            )
        _dt, a1, r_rc, cap_dt, decay, kib_gain, th_decay, r_fixed, relax = self._dt_cache
        relax_g, relax_a = relax
        relax_gsum = relax_g.sum(axis=0)
        relax_feed = (relax_g * self.relax_v).sum(axis=0)
        soc_a = self._plate_soc()
        ocv = self._ocv_e + self._ocv_span * soc_a + self._ocv_tc * (self.temp_c - 25.0)
        vrc_free = self.v_rc * a1
        eta0 = self.eta_v
        eta_star = eta0
        limit = 0.1 * p.n_cells
        fixed = self._faradaic_fixed(soc_a)  # temperature and charge: held in the passes
        setpoint = self._setpoint_v()
        # Newton on the implicit (backward Euler) interface equation, coupled with the
        # string solve: C (eta - eta0)/dt = I - F(eta) + sum_k g_k (u_k - eta), the
        # slow stages u_k implicit too.  Usually one pass is enough.
        for _ in range(6):
            f_star, g_star, i_main, i_side, i_short, g_main = self._faradaic(
                eta_star, ocv, soc_a, dt, fixed
            )
            k_eta = 1.0 / (cap_dt + g_star + relax_gsum)
            eta_base = (cap_dt * eta0 - f_star + g_star * eta_star + relax_feed) * k_eta
            # Block terminal voltage is affine in its current: V = a + r I.
            a = ocv + eta_base + vrc_free
            r = k_eta + r_fixed
            current = self._solve_buses(a - r * bleed, r, setpoint) - bleed
            eta_new = eta_base + k_eta * current
            # Damped: a pass moves eta by at most 0.1 V per cell.
            eta_new = np.minimum(np.maximum(eta_new, eta_star - limit), eta_star + limit)
            step_eta = eta_new - eta_star
            moved = float(np.max(np.abs(step_eta)))
            lin_point = eta_star
            eta_star = eta_new
            if moved < 2e-4:
                break
        # The UPS sheds its load once the converged bus voltage is below its end voltage
        # (or the battery cannot deliver the power); latched until mains return.
        self.load_state[self._shed_request & (self.load_state == LOAD_ON_BATTERY)] = LOAD_SHED
        # Branch currents at the new overvoltage, to first order from the last pass.
        d_eta = eta_star - lin_point
        g_side = i_side * self._kside
        i_short = i_short + (g_star - g_main - g_side) * d_eta
        i_main = i_main + g_main * d_eta
        i_side = i_side + g_side * d_eta
        self._faradaic_conductance_s = g_star
        self.eta_v = eta_star
        self.relax_v = (self.relax_v + relax_a * eta_star) / (1.0 + relax_a)
        self.v_rc = vrc_free + r_rc * current
        self.block_current_a = current
        self.main_current_a = i_main
        self.side_current_a = i_side
        self.short_current_a = i_short
        # Charge: the main reaction fills the available well; the wells relax (KiBaM).
        self.kibam_delta = self.kibam_delta * decay - i_main * kib_gain
        self.soc = np.maximum(np.minimum(self.soc + i_main * dt / self._cap_as, 1.0), 0.0)
        # Heat: ohmic, RC pair, main-reaction overvoltage and entropy, side reactions and
        # soft short (their whole electrical power), the module's bleed resistor, heaters.
        vint = ocv + eta_star
        terminal = vint + self.v_rc + p.r0_ohm * current
        self.terminal_v = terminal
        tk = self.temp_c + KELVIN
        heat = (
            p.r0_ohm * current * current
            + self.v_rc * self.v_rc / p.r1_ohm
            + i_main * eta_star
            - i_main * p.n_cells * p.ocv_temp_coeff_v_per_k_per_cell * tk
            + (i_side + i_short) * vint
            + p.bleed_heat_fraction * terminal * bleed
            + self.external_heat_w
        )
        self.heat_w = heat
        t_eq = self.ambient_c + heat * p.thermal_resistance_k_per_w
        self.temp_c = t_eq + (self.temp_c - t_eq) * th_decay
        self.time_s += dt

    def _relax_terms(self, dt: float) -> tuple[FloatArray, FloatArray]:
        """Backward-Euler coefficients of the slow relaxation stages for a step dt:
        the conductance g_k = C_k / (tau_k + dt) through which stage k feeds the
        interface at the end of the step, and a_k = dt / tau_k (both (3, S, N))."""
        p = self.params
        caps = np.stack((p.relax1_f, p.relax2_f, p.relax3_f))
        taus = np.stack((p.relax1_tau_s, p.relax2_tau_s, p.relax3_tau_s))
        return caps / (taus + dt), dt / taus

    def _charger_sense_c(self) -> FloatArray:
        """The charger's battery-temperature probe: mean block temperature per bus."""
        if self.bus_count == 1:
            return np.array([self.temp_c.mean()])
        per_string = self.temp_c.mean(axis=1)
        sums = np.bincount(self.bus_of_string, weights=per_string, minlength=self.bus_count)
        return np.asarray(sums / self._strings_per_bus, dtype=float)

    def _setpoint_v(self) -> FloatArray:
        ch = self.charger
        per_cell = np.where(self.boost_on, ch.boost_v_per_cell, ch.float_v_per_cell)
        lo, hi = ch.temp_comp_range_c
        sense = np.minimum(np.maximum(self._charger_sense_c(), lo), hi)
        per_cell = per_cell + ch.temp_comp_v_per_k_per_cell * (sense - ch.temp_comp_ref_c)
        return np.asarray(per_cell * self.cells_per_bus, dtype=float)

    def _solve_buses(self, a_eff: FloatArray, r: FloatArray, setpoint: FloatArray) -> FloatArray:
        """String currents (S, 1) given block voltages V = a_eff + r * I_string and the
        chargers' setpoints (_setpoint_v(): held through a step)."""
        a_s = a_eff.sum(axis=1)
        r_s = r.sum(axis=1) + self.charger.wiring_ohm
        g_s = 1.0 / r_s
        bus = self.bus_of_string
        if self.bus_count == 1:
            gsum_l = [float(g_s.sum())]
            hsum_l = [float((a_s * g_s).sum())]
        else:
            gsum_l = np.bincount(bus, weights=g_s, minlength=self.bus_count).tolist()
            hsum_l = np.bincount(bus, weights=a_s * g_s, minlength=self.bus_count).tolist()
        setpoint_l = setpoint.tolist()
        v_bus_l = [0.0] * self.bus_count
        mode = self.charger_mode
        limit = self.charger.current_limit_a
        for b in range(self.bus_count):
            gsum, hsum = gsum_l[b], hsum_l[b]
            v_open = hsum / gsum
            v_bus_l[b] = v_open
            self._shed_request[b] = False
            if self.mains_on[b]:
                i_cv = setpoint_l[b] * gsum - hsum
                if i_cv > limit:
                    v_bus_l[b] = (limit + hsum) / gsum
                    mode[b] = MODE_CURRENT_LIMIT
                else:
                    # A rectifier cannot sink current: below the battery's own voltage it
                    # simply stops conducting.
                    v_bus_l[b] = setpoint_l[b] if i_cv > 0.0 else v_open
                    mode[b] = MODE_BOOST if self.boost_on[b] else MODE_FLOAT
                continue
            mode[b] = MODE_OFF
            if self.load_state[b] == LOAD_ON_BATTERY and (
                self.load_w[b] > 0.0 or self.load_a[b] > 0.0
            ):
                end_v = self.charger.end_v_per_cell * self.cells_per_bus[b]
                if self.load_a[b] > 0.0:
                    v = (hsum - self.load_a[b]) / gsum
                    short_of_power = False
                else:
                    power = self.load_w[b]
                    disc = hsum * hsum - 4.0 * gsum * power
                    short_of_power = disc < 0.0
                    # Beyond the battery's maximum power, take the maximum-power point
                    # for this pass; the step then sheds the load.
                    v = (hsum + math.sqrt(max(disc, 0.0))) / (2.0 * gsum)
                v_bus_l[b] = v
                self._shed_request[b] = short_of_power or v < end_v
        v_bus = np.array(v_bus_l)
        self.charger_setpoint_v = setpoint
        self.bus_voltage_v = v_bus
        i_string = (v_bus[bus] - a_s) * g_s
        self.string_current_a = i_string
        if self.bus_count == 1:
            self.charger_current_a = np.array([i_string.sum()])
        else:
            self.charger_current_a = np.asarray(
                np.bincount(bus, weights=i_string, minlength=self.bus_count), dtype=float
            )
        return np.asarray(i_string[:, None], dtype=float)

    def _refresh_outputs(self) -> None:
        """Outputs for the present state without advancing time (after setup/events)."""
        p = self.params
        soc_a = self._plate_soc()
        ocv = self._ocv_e + self._ocv_span * soc_a + self._ocv_tc * (self.temp_c - 25.0)
        _f, g, i_main, i_side, i_short, _gm = self._faradaic(self.eta_v, ocv, soc_a, 1.0)
        self._faradaic_conductance_s = g
        self.main_current_a = i_main
        self.side_current_a = i_side
        self.short_current_a = i_short
        self.terminal_v = ocv + self.eta_v + self.v_rc + p.r0_ohm * self.block_current_a

    # ------------------------------------------------------------------ set-up helpers

    def settle_float(self, current_guess_a: float = 0.05) -> None:
        """Put every string in its steady float state at the charger's present setpoint
        (blocks at their initial SOC, no bleed, present temperatures): solves, per
        string, the current at which the blocks' steady voltages add up to the setpoint.
        Time does not advance."""
        p = self.params
        setpoint = self._setpoint_v()[self.bus_of_string]
        soc_a = np.clip(self.soc, 0.0, 1.0)
        self.kibam_delta[:] = 0.0
        ocv = self._ocv_e + self._ocv_span * soc_a + self._ocv_tc * (self.temp_c - 25.0)
        n = p.n_cells
        big_dt = 1e9  # steady state: the available-well limit does not bind
        fixed = self._faradaic_fixed(soc_a)

        def eta_for(current: FloatArray) -> FloatArray:
            # A block with no steady float state (one that discharges into a soft short
            # faster than the string charges it) is placed just below its OCV.
            lo = np.full(self.soc.shape, -0.05) * n
            hi = np.full(self.soc.shape, 0.8) * n
            for _ in range(60):
                mid = 0.5 * (lo + hi)
                f = self._faradaic(mid, ocv, soc_a, big_dt, fixed)[0]
                above = f > current
                hi = np.where(above, mid, hi)
                lo = np.where(above, lo, mid)
            return np.asarray(0.5 * (lo + hi), dtype=float)

        log_lo = np.full(setpoint.shape, math.log(1e-6))
        log_hi = np.full(setpoint.shape, math.log(1e3))
        for _ in range(50):
            log_mid = 0.5 * (log_lo + log_hi)
            i_s = np.exp(log_mid)[:, None]
            eta = eta_for(np.broadcast_to(i_s, self.soc.shape))
            v = (ocv + eta + (p.r0_ohm + p.r1_ohm) * i_s).sum(axis=1)
            v = v + self.charger.wiring_ohm * i_s[:, 0]
            over = v > setpoint
            log_hi = np.where(over, log_mid, log_hi)
            log_lo = np.where(over, log_lo, log_mid)
        i_s = np.exp(0.5 * (log_lo + log_hi))[:, None]
        current = np.broadcast_to(i_s, self.soc.shape).copy()
        self.eta_v = eta_for(current)
        self.relax_v[:] = self.eta_v  # the slow stages carry no current in steady state
        self.v_rc = p.r1_ohm * current
        self.block_current_a = current
        self.string_current_a = i_s[:, 0].copy()
        self.bus_voltage_v = self._setpoint_v()
        self._refresh_outputs()

    # ------------------------------------------------------------------ events

    def _buses(self, bus: int | None) -> list[int]:
        if bus is None:
            return list(range(self.bus_count))
        if not 0 <= bus < self.bus_count:
            raise IndexError("bus %d does not exist (0..%d)" % (bus, self.bus_count - 1))
        return [bus]

    def mains_fail(self, load_w: float, bus: int | None = None, load_a: float = 0.0) -> None:
        """Mains failure: the charger stops and a constant-power load of ``load_w`` (W,
        per bus) runs from the battery until mains return or the end voltage
        (``end_v_per_cell``) is reached; then the UPS sheds the load.  ``load_a`` > 0
        draws a constant current instead (a test rig's electronic load)."""
        for name, value in (("load_w", load_w), ("load_a", load_a)):
            if value < 0 or not math.isfinite(value):
                raise ValueError("%s must be finite and >= 0, got %r" % (name, value))
        for b in self._buses(bus):
            self.mains_on[b] = False
            self.load_w[b] = load_w
            self.load_a[b] = load_a
            self.load_state[b] = LOAD_ON_BATTERY

    def mains_restore(self, bus: int | None = None) -> None:
        """Mains return: the rectifier feeds the load and recharges the battery (current
        limit, then constant voltage)."""
        for b in self._buses(bus):
            self.mains_on[b] = True
            self.load_state[b] = LOAD_MAINS

    def set_boost(self, on: bool, bus: int | None = None) -> None:
        """Boost (equalising) charge on or off: the setpoint changes to boost_v_per_cell."""
        for b in self._buses(bus):
            self.boost_on[b] = bool(on)

    def set_external_heat(self, string: int, block: int, watts: float) -> None:
        """External heat into one block (a heater, a hot neighbour, sun on the cabinet)."""
        self._check_index(string, block)
        self.external_heat_w[string, block] = float(watts)

    def replace_block(
        self, string: int, block: int, new: BlockParams, src: tuple[int, int] = (0, 0)
    ) -> None:
        """Swap in a different block (parameters ``new[src]``), at its ``initial_soc``,
        at ambient temperature, at rest."""
        self._check_index(string, block)
        self.params.set_block(string, block, new, src)
        self._derive_constants()
        self.soc[string, block] = self.params.initial_soc[string, block]
        self.kibam_delta[string, block] = 0.0
        self.eta_v[string, block] = 0.0
        self.relax_v[:, string, block] = 0.0
        self.v_rc[string, block] = 0.0
        self.temp_c[string, block] = self.ambient_c[string, block]
        self._refresh_outputs()

    def params_changed(self) -> None:
        """Call after changing ``self.params`` in place (e.g. with override_block)."""
        self._derive_constants()
        self._refresh_outputs()

    def _check_index(self, string: int, block: int) -> None:
        s_count, n_count = self.params.shape
        if not (0 <= string < s_count and 0 <= block < n_count):
            raise IndexError(
                "block (%d, %d) is outside the %d x %d bank" % (string, block, s_count, n_count)
            )

    # ------------------------------------------------------------------ outputs

    def ripple(self) -> Ripple:
        """Charger ripple now: per-harmonic rms current per string and voltage per block.

        The rectifier's ripple acts as a current source (its output choke's impedance is
        far above the battery's); parallel strings on one bus share it by admittance.  A
        block's ripple voltage is that current times its impedance at the frequency:
        R0 + R1 / (1 + j w tau1) + 1 / (G_faradaic + j w C_interface)."""
        ch = self.charger
        k_count = len(ch.ripple_current_a_rms)
        fund = ch.mains_hz * ch.ripple_multiple
        freqs = fund * np.arange(1, k_count + 1, dtype=float)
        p = self.params
        w = 2.0 * math.pi * freqs[None, None, :]
        z_block = (
            p.r0_ohm[..., None]
            + p.r1_ohm[..., None] / (1.0 + 1j * w * p.tau1_s[..., None])
            + 1.0 / (self._faradaic_conductance_s[..., None] + 1j * w * p.interface_f[..., None])
        )
        z_string = z_block.sum(axis=1) + ch.wiring_ohm  # (S, K)
        y = 1.0 / z_string
        bus = self.bus_of_string
        y_bus = np.zeros((self.bus_count, k_count), dtype=complex)
        np.add.at(y_bus, bus, y)
        amps = np.asarray(ch.ripple_current_a_rms, dtype=float)[None, :]
        charging = self.mains_on[bus][:, None]
        i_string = np.where(charging, amps * y / y_bus[bus], 0.0)
        v_block = np.abs(i_string[:, None, :] * z_block)
        return Ripple(freqs, np.abs(i_string), v_block)

    def string_voltage_v(self) -> FloatArray:
        return np.asarray(self.terminal_v.sum(axis=1), dtype=float)
