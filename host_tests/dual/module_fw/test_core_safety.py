# Safety of the whole module under a seeded fuzz of manager commands, battery states,
# button presses and time gaps (both interpreters).  Invariants checked every 100 ms
# (host_tests/dual/safetyfuzz.py): no bleed below the variant's minimum voltage, with a
# stale or missing target, during a discharge, with equalising off, unaddressed, in
# addressing mode, in the 12 s reset hold, asleep; and the board's temperature
# (first-order thermal model of the bleed resistor, docs/frontend.md) never above the
# variant's board limit.  The hypothesis twin with the full simulated board is
# host_tests/host/test_module_safety.py.
from dualtest import LCG
from safetyfuzz import run_fuzz

MICROPYTHON_TIMEOUT_S = 600


def test_fuzzed_commands_and_battery_states_never_break_safety():
    bled = 0
    for seed in (1, 2, 3):
        bled += run_fuzz(LCG(seed), 150)
    assert bled > 100  # the fuzz really drove it into bleeding, not only into stops
