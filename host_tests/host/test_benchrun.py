"""The benchmark runner (tools/stringcare/benchrun.py)."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from stringcare import benchrun


def test_a_loaded_benchmark_can_run_its_functions_in_worker_processes(tmp_path: Path) -> None:
    # bench_sim_band hands its points to a process pool, which pickles the function by
    # module and name: a benchmark loaded from its path must be importable by that name
    # (before, `make bench` failed on sim_band with a PicklingError).
    bench = tmp_path / "tools" / "bench" / "bench_pooled.py"
    bench.parent.mkdir(parents=True)
    bench.write_text(
        "METRICS = {'pooled.sum': ('1', None, 'a sum')}\n"
        "def square(x):\n    return x * x\n"
        "def run(progress):\n"
        "    from concurrent.futures import ProcessPoolExecutor\n"
        "    with ProcessPoolExecutor(max_workers=2) as pool:\n"
        "        return {'pooled.sum': sum(pool.map(square, range(5)))}\n"
    )
    module = benchrun.load(bench)
    with ProcessPoolExecutor(max_workers=1) as pool:
        assert pool.submit(module.square, 7).result() == 49
    lines: list[str] = []
    results, failures = benchrun.run_all(tmp_path, ["pooled"], tmp_path / "out.json", lines.append)
    assert failures == [], "\n".join(lines)
    assert results == {"pooled.sum": 30}


def test_a_benchmark_that_fails_to_import_is_not_left_half_registered(tmp_path: Path) -> None:
    import sys

    bench = tmp_path / "bench_broken.py"
    bench.write_text("raise RuntimeError('broken on purpose')\n")
    try:
        benchrun.load(bench)
    except RuntimeError as e:
        assert "broken on purpose" in str(e)
    else:
        raise AssertionError("a benchmark that raises on import loaded")
    assert "stringcare_bench_bench_broken" not in sys.modules
