"""bench/intake.py: the table's rows (given numbers: nothing is timed), the pushes it sends,
and one small real run of both gunicorns, checked for the table's shape and for every
acknowledged push being found in the store — not for its timings."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.harness import postgres
from tests.harness.postgres import require_postgres

BENCH = Path(__file__).resolve().parents[3] / "bench" / "intake.py"


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_intake_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass resolves its annotations there
    spec.loader.exec_module(module)
    return module


def run_of(
    bench: ModuleType, latencies: list[float], seconds: float, acked: int, cpu: float | None = None
) -> object:
    run = bench.Run(latencies_ms=latencies, seconds=seconds, cpu_seconds=cpu)
    run.acked = {f"d{i}": i for i in range(acked)}
    return run


def test_rows_carry_percentiles_rate_ratio_and_verdict() -> None:
    bench = load_bench()
    bare = run_of(bench, [10.0] * 99 + [40.0], 0.25, 0, cpu=0.1)  # 400 req/s, 1 ms CPU each
    good = run_of(bench, [20.0] * 99 + [45.0], 0.35, 100, cpu=0.25)  # 286 req/s: 0.71x
    rows = bench.summary_rows(good, bare, 100)
    assert [r[1:6] for r in rows] == [
        ("20.0", "20.0", "286", "0.71x", "2.50"),
        ("10.0", "10.0", "400", "1.00x", "1.00"),
    ]
    assert rows[0][6] == "stored 100/100 ok" and rows[1][6] == ""
    slow = run_of(bench, [20.0] * 98 + [60.0] * 2, 0.5, 100)  # p99 60 ms, 0.50x
    assert bench.summary_rows(slow, bare, 97)[0][5] == "?"  # CPU not read
    note = bench.summary_rows(slow, bare, 97)[0][6]
    assert note.startswith("stored 97/100 MISSED")
    assert "p99 >= 50 ms" in note and "< 0.7x bare" in note and "3 acked not stored" in note


def test_process_cpu_counts_a_process_and_its_children() -> None:
    bench = load_bench()
    child = subprocess.Popen(  # burns about 0.3 s of CPU, then waits to be read
        [sys.executable, "-c", "import sys,time\nt=time.process_time()\n"
         "while time.process_time()-t<0.3: pass\nprint(1,flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline() == b"1\n"
        alone = bench.process_cpu(child.pid)
        assert alone is not None and alone >= 0.25
        mine = bench.process_cpu(os.getpid())
        assert mine is not None and mine >= alone  # the child's CPU counts in its parent's
    finally:
        child.communicate(b"")
    assert bench.process_cpu(child.pid) is None  # reaped: nothing to read


def test_p99_is_nearest_rank() -> None:
    bench = load_bench()
    assert bench.percentile([float(i) for i in range(1, 101)], 99) == 99.0
    assert bench.percentile([float(i) for i in range(1, 101)], 50) == 50.0
    assert bench.percentile([7.0], 99) == 7.0


def test_each_push_follows_the_previous_one_of_its_branch() -> None:
    bench = load_bench()
    sent = [json.loads(body) for _, body in bench.deliveries(70, "run")]
    assert len({p["after"] for p in sent}) == 70
    last: dict[tuple[str, str], str] = {}
    for payload in sent:
        key = (payload["repository"]["full_name"], payload["ref"])
        assert payload["before"] == last.get(key, "0" * 40)
        last[key] = payload["after"]
    assert len(last) == len(bench.REPOS) * bench.BRANCHES


def small_run(store: str) -> list[str]:
    """The bench's output lines for a run of 12 pushes on ``store``."""
    done = subprocess.run(
        [sys.executable, str(BENCH), "--store", store, "--pushes", "12", "--clients", "4",
         "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=BENCH.parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()


def assert_table(lines: list[str], store: str) -> None:
    """One table (header, bot, peer) for ``store``, every acknowledged push stored."""
    assert any(line.endswith("every acknowledged push stored)") and f"store {store}" in line
               for line in lines)  # fmt: skip
    rows = [line for line in lines if line.startswith("| ")]
    assert len(rows) == 3  # header, bot, peer
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert cells[0] == [
        "case", "p50 ms", "p99 ms", "req/s", "ratio to bare", "server CPU ms/req", "verdict"
    ]  # fmt: skip
    assert cells[1][0].startswith("bot:") and cells[2][0].startswith("peer:")
    assert cells[1][6].startswith("stored 12/12") and cells[2][4] == "1.00x"
    assert all(float(row[5]) > 0 for row in cells[1:])  # gunicorn's CPU was read
    summary = json.loads(lines[-1])
    assert summary["store"] == store
    assert summary["bot_statuses"] == {"202": 12} and summary["bare_statuses"] == {"202": 12}
    assert summary["acked"] == summary["stored"] == 12


def test_a_small_run_prints_the_table_and_finds_every_push_stored() -> None:
    assert_table(small_run("sqlite"), "SQLite")


def test_a_small_run_on_a_private_postgresql_server_prints_its_table() -> None:
    require_postgres()
    assert_table(small_run("postgres"), "PostgreSQL")


def test_without_postgresql_its_table_is_skipped_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench()
    monkeypatch.setattr(postgres, "PG_ROOT", Path("/nonexistent-postgresql"))
    ran: list[object] = []

    def bench_store(*args: object) -> int:
        ran.append(args)
        return 0

    monkeypatch.setattr(bench, "bench_store", bench_store)
    assert bench.main(["--store", "postgres"]) == 0
    assert ran == []
    out = capsys.readouterr().out
    assert "store PostgreSQL: skipped: PostgreSQL is not installed" in out


def test_run_all_runs_it() -> None:  # with its defaults: both stores
    assert '"intake.py"' in (BENCH.parent / "run_all.py").read_text()
