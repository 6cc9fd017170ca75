"""bench/scale_out.py: its table from a given outcome (nothing is run or timed), the
invariants it reports on that outcome, and its place in ``make bench``. The scenario itself
runs for real in ``tests/integration/test_scale_out.py``."""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from collections import namedtuple
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pytest

from bot.store.drain import WORKER_HOST_LOST
from tests.harness.scale_out import Ack, Push
from tests.harness.scale_out_checks import Outcome

BENCH = Path(__file__).resolve().parents[3] / "bench" / "scale_out.py"
Attempt = namedtuple(
    "Attempt",
    "id build_id number state description worker started_at finished_at repo branch sha",
)
Image = namedtuple("Image", "attempt_id repository tags created_at")
Status = namedtuple("Status", "id repo sha context state description")
A, B, C = "a" * 40, "b" * 40, "c" * 40


def load_bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_scale_out_under_test", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _attempt(n: int, sha: str, state: str, description: str, span: tuple[float, float]) -> Attempt:
    return Attempt(n, n, 1, state, description, f"h:{n}:t:job{n}", *span, "acme/app0", "b0", sha)


def outcome() -> Outcome:
    """One branch, three pushes: the first killed with its host, the second reaped while
    its host was paused (it pushed nothing after), the third passed and tagged."""
    pushes = [
        Push("acme/app0", "b0", i, sha, before)
        for i, (sha, before) in enumerate([(A, "0" * 40), (B, A), (C, B)])
    ]
    paused = _attempt(2, B, "errored", WORKER_HOST_LOST, (12.0, 15.0))
    return Outcome(
        branches={("acme/app0", "b0"): pushes},
        acks=[Ack(p, 202, i + 1, 1.0 + i) for i, p in enumerate(pushes)],
        settle_seconds=8.25,
        attempts=[
            _attempt(1, A, "errored", WORKER_HOST_LOST, (10.0, 12.0)),
            paused,
            _attempt(3, C, "passed", "ok", (15.0, 17.0)),
        ],
        images=[Image(3, "127.0.0.1:5000/acme/app0", "b0", 16.9)],
        outbox=[
            Status(1, "acme/app0", B, "wb/build", "pending", "Queued"),
            Status(2, "acme/app0", B, "wb/build", "error", WORKER_HOST_LOST),
        ],
        final={
            ("acme/app0", A): {"wb/build": "error"},
            ("acme/app0", B): {"wb/build": "error"},
            ("acme/app0", C): {"wb/build": "success"},
        },
        tags={("acme/app0", "b0"): [C]},
        killed=[1],
        paused=[paused],
        paused_outbox=2,
        paused_log="attempt 2 is no longer owned by h:2:t:job2",
    )


def test_rows_give_the_settle_time_the_states_and_every_invariant_ok() -> None:
    rows = load_bench().summary_rows(outcome())
    assert rows[:3] == [
        ("pushes accepted / sent", "3/3"),
        ("settle time after the last push", "8.2 s"),
        ("attempts by state", "errored 2, passed 1"),
    ]
    verdicts = dict(rows[3:])
    assert set(verdicts) == {f"invariant: {name}" for name in outcome().problems()}
    assert set(verdicts.values()) == {"ok"}


class Job(NamedTuple):
    id: int
    lock: str
    status: str


@pytest.mark.parametrize(
    ("change", "invariant", "evidence"),
    [
        (
            {"tags": {("acme/app0", "b0"): [B, C, B, C]}},
            "backwards",
            "bbbbbbbb (#1) after cccccccc",
        ),
        (
            {
                "attempts": [
                    _attempt(1, A, "errored", WORKER_HOST_LOST, (10.0, 12.0)),
                    _attempt(2, B, "errored", WORKER_HOST_LOST, (12.0, 15.0)),
                    _attempt(3, C, "passed", "ok", (14.0, 17.0)),
                ]
            },
            "overlap",
            "BROKEN x1: attempt 2 (build 2 #1 acme/app0@b0",
        ),
        (
            {"images": [Image(2, "r/acme/app0", "b0", 15.5), Image(3, "r/acme/app0", "b0", 16.9)]},
            "fenced",
            "after its reap",
        ),
        ({"killed": [3]}, "killed", "attempt 3"),
        ({"final": {}}, "unfinished", "no status"),
        ({"jobs": [Job(9, "acme/app0@b0", "doing")]}, "jobs", "job 9 (acme/app0@b0) still doing"),
    ],
)
def test_a_broken_invariant_is_named_with_its_evidence(
    change: dict[str, Any], invariant: str, evidence: str
) -> None:
    rows = dict(load_bench().summary_rows(dataclasses.replace(outcome(), **change)))
    verdict = rows.pop(f"invariant: {invariant}")
    assert verdict.startswith("BROKEN x") and evidence in verdict, verdict
    others = {k: v for k, v in rows.items() if k.startswith("invariant:")}
    assert invariant == "unfinished" or set(others.values()) == {"ok"}, others


def test_without_the_services_it_says_why_and_succeeds(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_bench()
    monkeypatch.setattr(bench, "services_missing", lambda: "no PostgreSQL here")
    assert bench.main(["--pushes", "5"]) == 0
    assert capsys.readouterr().out.strip() == "(scale-out scenario not run: no PostgreSQL here)"


def test_run_all_runs_it() -> None:
    assert '"scale_out.py"' in (BENCH.parent / "run_all.py").read_text()
