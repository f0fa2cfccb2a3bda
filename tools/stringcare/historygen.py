"""Seeded, realistic module values of battery strings, for the history benchmark,
`stringcare history demo` and the host tests (CPython only).

Float charge (what a store mostly holds):
- block voltage: the string's float voltage per block plus a deviation that balancing
  pulls back to target (Ornstein-Uhlenbeck, sigma 6 mV, time constant 6 h) and ADC
  noise (sigma 1 mV);
- temperature: room 22 °C with a daily swing of +-1.5 °C and a slow drift, each block
  a fixed 0-1.5 °C above room by its place in the rack, read by a digital probe with
  1/16 °C resolution and sigma 0.03 °C noise;
- balance level: 6 % per mV above target (0-100 %), as a proportional bleed would;
- Ri: a per-block value 4-6 mΩ, re-measured once a day with 1 % noise;
- string current: float current 150 mA with sigma 20 mA, 10 mA sensor resolution.
Discharge: constant current, block voltages fall along a lead-acid curve with the
block's own capacity (+-5 %), records every 10 s.
"""

from __future__ import annotations

import math
import random
from array import array

from shared import history as h

DAY_S = 86400


class StringPlant:
    def __init__(
        self,
        modules: int,
        strings: int,
        seed: int,
        float_uv_per_block: int = 13620000,
        start_s: int = 200000000,
    ) -> None:
        if modules < strings or strings < 1:
            raise ValueError("need at least one module per string")
        self.rng = random.Random(seed)
        base, extra = divmod(modules, strings)
        self.string_sizes = [base + (1 if s < extra else 0) for s in range(strings)]
        self.modules = modules
        self.float_uv = float_uv_per_block
        self.time_s = start_s
        rng = self.rng
        self.dev_mv = [rng.gauss(0.0, 6.0) for _ in range(modules)]
        self.rack_c = [rng.uniform(0.0, 1.5) for _ in range(modules)]
        self.ri_true = [rng.uniform(4.0e6, 6.0e6) for _ in range(modules)]
        self.capacity = [rng.uniform(0.95, 1.05) for _ in range(modules)]
        self.drift_c = 0.0
        self.voltage_uv = array("i", [0] * modules)
        self.temp_mc = array("i", [0] * modules)
        self.ri_nohm = array("i", [0] * modules)
        self.balance_pct = bytearray(modules)
        self.state = bytearray(modules)
        self.current_ma = array("i", [0] * strings)
        self.last_ri_s = -DAY_S
        self.mode = h.MODE_FLOAT
        self.step_float(0)

    def _temperatures(self, extra_c: float = 0.0) -> None:
        rng = self.rng
        day = 2 * math.pi * (self.time_s % DAY_S) / DAY_S
        room = 22.0 + 1.5 * math.sin(day) + self.drift_c
        for i in range(self.modules):
            t = room + self.rack_c[i] + extra_c + rng.gauss(0.0, 0.03)
            self.temp_mc[i] = int(round(t * 16)) * 1000 // 16

    def _ri(self) -> None:
        if self.time_s - self.last_ri_s >= DAY_S:
            self.last_ri_s = self.time_s
            for i in range(self.modules):
                self.ri_true[i] *= 1.0 + 0.0001  # slow ageing
                self.ri_nohm[i] = int(self.ri_true[i] * self.rng.gauss(1.0, 0.01))

    def step_float(self, dt_s: int) -> None:
        """Advance dt_s seconds in float charge and take a reading."""
        rng = self.rng
        self.time_s += dt_s
        self.mode = h.MODE_FLOAT
        tau = 6 * 3600.0
        a = math.exp(-dt_s / tau)
        noise = 6.0 * math.sqrt(max(0.0, 1 - a * a))
        self.drift_c += rng.gauss(0.0, 0.02 * math.sqrt(dt_s / 1200.0))
        self.drift_c *= 0.999
        for i in range(self.modules):
            self.dev_mv[i] = a * self.dev_mv[i] + rng.gauss(0.0, noise)
            dev = self.dev_mv[i]
            self.voltage_uv[i] = self.float_uv + int((dev + rng.gauss(0.0, 1.0)) * 1000)
            self.balance_pct[i] = max(0, min(100, int(6 * dev)))
            self.state[i] = h.STATE_NORMAL
        self._temperatures()
        self._ri()
        for s in range(len(self.string_sizes)):
            self.current_ma[s] = int(round(rng.gauss(150.0, 20.0) / 10.0)) * 10

    def step_discharge(self, dt_s: int, elapsed_s: int, duration_s: int, current_a: float) -> None:
        """A reading elapsed_s into a discharge of duration_s (end at 1.75 V/cell)."""
        rng = self.rng
        self.time_s += dt_s
        self.mode = h.MODE_DISCHARGE
        for i in range(self.modules):
            depth = min(1.0, elapsed_s / (duration_s * self.capacity[i]))
            per_cell = 2.02 - 0.12 * depth - 0.15 * depth**8
            self.voltage_uv[i] = int((per_cell * 6 + rng.gauss(0.0, 0.002)) * 1e6)
            self.balance_pct[i] = 0
        self._temperatures(extra_c=3.0 * elapsed_s / max(1, duration_s))
        for s in range(len(self.string_sizes)):
            self.current_ma[s] = -int(current_a * 1000 / len(self.string_sizes))

    def arrays(self) -> tuple:
        return (
            self.voltage_uv,
            self.temp_mc,
            self.ri_nohm,
            self.balance_pct,
            self.state,
            self.current_ma,
        )


def write_float_days(writer, plant: StringPlant, days: float, interval_s: int = 1200) -> int:
    """Append float-charge snapshots every interval_s for `days`; returns the count."""
    n = int(days * DAY_S / interval_s)
    for _ in range(n):
        plant.step_float(interval_s)
        writer.append(plant.time_s, plant.mode, *plant.arrays())
    return n


def write_discharge(
    writer, plant: StringPlant, duration_s: int = 1800, interval_s: int = 10, current_a: float = 80
) -> int:
    n = duration_s // interval_s
    for k in range(1, n + 1):
        plant.step_discharge(interval_s, k * interval_s, duration_s, current_a)
        writer.append(plant.time_s, plant.mode, *plant.arrays())
    return n


class RamDevice:
    """A fast in-memory block device for host benchmarks (no NOR checks, no power cuts;
    the dual tests use manager_fw.blockdev.SimFlash for that)."""

    def __init__(self, size: int, erase_size: int = 4096) -> None:
        self.size = size
        self.erase_size = erase_size
        self.data = bytearray(b"\xff") * size

    def read(self, addr: int, buf, n: int) -> None:
        buf[:n] = self.data[addr : addr + n]

    def program(self, addr: int, buf, n: int) -> None:
        self.data[addr : addr + n] = bytes(buf[:n])

    def erase(self, block: int) -> None:
        a = block * self.erase_size
        self.data[a : a + self.erase_size] = b"\xff" * self.erase_size

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
