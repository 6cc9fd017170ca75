"""What an attempt records (``bot.store.records``), read back through ``build_detail``."""

from __future__ import annotations

from bot.models import Result
from bot.store.sql import SqlStore
from tests.unit.store.helpers import push


def test_an_attempt_records_its_runner_pipelines_steps_and_end(store: SqlStore) -> None:
    intake = store.record_push(push("a" * 40))
    claim = store.claim_next("w")
    assert claim is not None
    store.set_attempt_runner(claim.attempt_id, "local")
    pipe = store.start_pipeline(claim.attempt_id, 0, "build")
    step = store.start_step(pipe, 0, "main", "script", "test")
    store.finish_step(step, Result.FAILED, 2, "exit 2")
    store.finish_pipeline(pipe, Result.FAILED, "Step 'test' failed")
    store.finish_attempt(claim.attempt_id, Result.FAILED, "Step 'test' failed")
    detail = store.build_detail(intake.build_id or 0)
    assert detail is not None
    (attempt,) = detail.attempts
    assert (attempt.runner, attempt.state, attempt.description) == (
        "local",
        "failed",
        "Step 'test' failed",
    )
    assert attempt.finished_at is not None
    (pipeline,) = attempt.pipelines
    assert (pipeline.state, pipeline.description) == ("failed", "Step 'test' failed")
    assert pipeline.started_at is not None and pipeline.finished_at is not None
    (shown,) = pipeline.steps
    assert (shown.state, shown.exit_code, shown.message) == ("failed", 2, "exit 2")


def test_error_open_pipelines_ends_only_what_is_still_open(store: SqlStore) -> None:
    intake = store.record_push(push("a" * 40))
    claim = store.claim_next("w")
    assert claim is not None
    done = store.start_pipeline(claim.attempt_id, 0, "build")
    store.finish_pipeline(done, Result.PASSED, "Passed")
    open_pipe = store.start_pipeline(claim.attempt_id, 1, "deploy")
    finished = store.start_step(open_pipe, 0, "main", "script", "one")
    store.finish_step(finished, Result.PASSED, 0, "")
    store.start_step(open_pipe, 1, "main", "script", "two")
    store.error_open_pipelines(claim.attempt_id, "internal error")
    detail = store.build_detail(intake.build_id or 0)
    assert detail is not None
    build, deploy = detail.attempts[0].pipelines
    assert (build.state, build.description) == ("passed", "Passed")
    assert (deploy.state, deploy.description) == ("errored", "internal error")
    assert [(s.state, s.message) for s in deploy.steps] == [
        ("passed", ""),
        ("errored", "internal error"),
    ]


def test_a_step_name_longer_than_its_column_is_cut_not_refused(store: SqlStore) -> None:
    # SQLite would keep any length; PostgreSQL refuses what exceeds varchar(400).
    store.record_push(push("a" * 40))
    claim = store.claim_next("w")
    assert claim is not None
    pipeline = store.start_pipeline(claim.attempt_id, 0, "build")
    store.start_step(pipeline, 0, "main", "script", "n" * 1000)
    detail = store.build_detail(claim.build.id)
    assert detail is not None
    assert detail.attempts[0].pipelines[0].steps[0].name == "n" * 400
