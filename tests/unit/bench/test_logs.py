"""bench/logs.py gives each build-log case a ratio against the plain-file peer measured in the
same run and a "bounded" verdict against 64 MB (given numbers here: nothing is measured)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[3] / "bench" / "logs.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_logs_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_carry_delta_stored_ratio_and_verdict() -> None:
    bench = load_bench()
    rows = bench.summary_rows(
        {
            "bot": {"rss_delta_mb": 12.0, "stored": 10485981, "seconds": 1.0},
            "failing": {"rss_delta_mb": 64.0, "stored": 0, "seconds": 10.0},
            "peer": {"rss_delta_mb": 4.0, "stored": 209715200, "seconds": 0.1},
        }
    )
    assert [r[1:] for r in rows] == [
        ("12.0", "10485981", "3.00x", "bounded"),
        ("64.0", "0", "16.00x", "UNBOUNDED"),  # the bound is strictly under 64 MB
        ("4.0", "209715200", "1.00x", ""),
    ]


def test_the_peer_is_floored_at_one_mb() -> None:
    bench = load_bench()
    rows = bench.summary_rows(
        {
            "bot": {"rss_delta_mb": 5.0, "stored": 1, "seconds": 1.0},
            "failing": {"rss_delta_mb": 2.5, "stored": 0, "seconds": 1.0},
            "peer": {"rss_delta_mb": 0.01, "stored": 1, "seconds": 0.1},
        }
    )
    assert [r[3] for r in rows] == ["5.00x", "2.50x", "0.01x"]


def test_chunks_are_64_kb_of_whole_100_byte_lines() -> None:
    bench = load_bench()
    data = list(bench.chunks(1_000_000))
    assert all(len(c) == 65536 for c in data[:-1])
    joined = b"".join(data)
    assert len(joined) == 1_000_000 and joined == bench.LINE * 10_000


def test_run_all_runs_it() -> None:
    assert '"logs.py"' in (BENCH.parent / "run_all.py").read_text()
