"""Safety of the whole module core under hypothesis-generated fuzz, on the simulated
board (boards/sim/frontend.SimBoard: converter errors and noise, the board's thermal
model with its bleed heat, a battery probe that may be absent or hot).  The same
invariants as the seeded dual test (host_tests/dual/safetyfuzz.py), with shrinking to a
minimal counter-example when one breaks."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetyfuzz import V12, run_fuzz

from boards.sim.frontend import SimBoard
from shared import frontend as fe


class DataRng:
    """The fuzz harness's rng interface, fed by hypothesis (so failures shrink)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def below(self, n: int) -> int:
        return self.data.draw(st.integers(0, n - 1)) if n > 1 else 0

    def between(self, low: int, high: int) -> int:
        return self.data.draw(st.integers(low, high))

    def bytes(self, n: int) -> bytes:
        return self.data.draw(st.binary(min_size=n, max_size=n))


class SimulatedBoard:
    """SimBoard seen through the harness's board interface (m°C, µV)."""

    def __init__(self, ambient_mc: int, seed: int, probe_c: float | None) -> None:
        self.sim = SimBoard(V12, seed, fe.ADC_STM32G4)
        self.sim.thermal.temp_c = ambient_mc / 1000
        self.temp_mc = ambient_mc
        self.probe_c = probe_c

    def internal_frame(self) -> int:
        codes = self.sim.internal_sensor_frame(self.temp_mc / 1000)
        return fe.frame_sum_x2(codes, len(codes), fe.ADC_STM32G4)

    def probe_frame(self) -> int:
        codes = self.sim.probe_frame(self.probe_c, self.temp_mc / 1000)
        return fe.frame_sum_x2(codes, len(codes), fe.ADC_STM32G4)

    def voltage_frame(self, block_uv: int, exact: int) -> int:
        return self.sim.voltage_frame_sum_x2(block_uv / 1e6, 0.02, self.temp_mc / 1000)

    def step(self, dt_ms: int, block_uv: int, duty: int, ambient_mc: int) -> None:
        c = self.sim.heat(dt_ms / 1000, block_uv / 1e6, duty, ambient_mc / 1000)
        self.temp_mc = int(c * 1000)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.data(),
    st.integers(0, 1000),
    st.one_of(st.none(), st.floats(10.0, 70.0)),
    st.integers(20, 80),
)
def test_module_never_bleeds_unsafely_and_never_overheats(data, seed, probe_c, steps):
    def board(ambient_mc: int) -> SimulatedBoard:
        return SimulatedBoard(ambient_mc, seed, probe_c)

    run_fuzz(DataRng(data), steps, board)
