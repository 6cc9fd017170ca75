"""bench/push.py gives the cold-push row a verdict against its target (<= 1.0x skopeo)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[3] / "bench" / "push.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_push_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cold_row_has_a_verdict_against_skopeo() -> None:
    bench = load_bench()
    name, value, note = bench.cold_row(200, 2.0, 2.5)
    assert "200 MB" in name and "1.0x skopeo" in name
    assert value == "2.00 s"
    assert note == "0.80x skopeo ok"
    assert bench.cold_row(200, 2.5, 2.5)[2] == "1.00x skopeo ok"  # at the target is ok
    assert bench.cold_row(200, 3.0, 2.5)[2] == "1.20x skopeo MISSED"
