"""bench/check.py gives ``wercker-bot check`` a verdict against its 150 ms target and a ratio
against the peer measured in the same run (given numbers here: nothing is timed)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[3] / "bench" / "check.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_check_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_carry_median_p90_ratio_and_verdict() -> None:
    bench = load_bench()
    rows = bench.summary_rows([100.0, 120.0, 200.0], [50.0, 60.0, 70.0], [20.0, 30.0])
    name, median, p90, note = rows[0]
    assert "150 ms" in name
    assert (median, p90) == ("120", "200")
    assert note == "2.00x peer ok"
    assert rows[1][1:] == ("60", "70", "1.00x")
    missed = bench.summary_rows([150.0], [100.0], [20.0])[0]
    assert missed[3] == "1.50x peer MISSED"  # the target is strictly under 150 ms


def test_p90_is_nearest_rank() -> None:
    bench = load_bench()
    assert bench.p90([float(i) for i in range(1, 11)]) == 9.0
    assert bench.p90([5.0]) == 5.0


def test_run_all_runs_it() -> None:
    text = (BENCH.parent / "run_all.py").read_text()
    assert '"check.py"' in text
