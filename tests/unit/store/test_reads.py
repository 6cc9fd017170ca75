"""Read models (``bot.store.reads``): typed rows, in the order pages show them."""

from __future__ import annotations

from bot.models import Result
from bot.store.rows import (
    AttemptDetail,
    AttemptRow,
    BuildDetail,
    BuildSummary,
    ImageRow,
    PipelineRow,
    StepRow,
)
from bot.store.schema import attempts, builds, images, pipelines, steps
from bot.store.sql import SqlStore
from tests.unit.store.helpers import push


def _columns(table: object) -> set[str]:
    return {c.name for c in table.columns}  # type: ignore[attr-defined]


def test_list_builds_is_newest_first_with_the_newest_attempt(store: SqlStore) -> None:
    assert store.list_builds() == []
    store.record_push(push("a" * 40, delivery="g1"))
    claim = store.claim_next("w")
    assert claim is not None
    store.finish_attempt(claim.attempt_id, Result.FAILED, "Step failed")
    store.record_push(push("a" * 40, delivery="g1"))  # re-run: attempt 2
    store.record_push(push("c" * 40, branch="dev"))
    listed = store.list_builds()
    assert all(isinstance(b, BuildSummary) for b in listed)
    assert [(b.sha[0], b.branch) for b in listed] == [("c", "dev"), ("a", "main")]
    newest = listed[1].attempt
    assert isinstance(newest, AttemptRow)
    assert (newest.number, newest.state, newest.explicit) == (2, "queued", True)
    assert listed[1].pipelines == ("build", "deploy")
    assert len(store.list_builds(limit=1)) == 1


def test_build_detail_holds_attempts_pipelines_steps_and_images_in_order(
    store: SqlStore,
) -> None:
    assert store.build_detail(1) is None
    intake = store.record_push(push("a" * 40))
    claim = store.claim_next("w")
    assert claim is not None
    build_pipe = store.start_pipeline(claim.attempt_id, 0, "build")
    after = store.start_step(build_pipe, 0, "after", "script", "notify")
    second = store.start_step(build_pipe, 1, "main", "script", "test")
    first = store.start_step(build_pipe, 0, "main", "git-clone", "clone")
    for step in (first, second, after):
        store.finish_step(step, Result.PASSED, 0, "")
    store.finish_pipeline(build_pipe, Result.PASSED, "Passed")
    store.add_pipeline(claim.attempt_id, 1, "deploy", Result.SKIPPED, "not configured")
    store.add_image(claim.attempt_id, "build", "r.test", "acme/app", ["v1", "latest"], "sha256:d")
    detail = store.build_detail(intake.build_id or 0)
    assert isinstance(detail, BuildDetail)
    (attempt,) = detail.attempts
    assert isinstance(attempt, AttemptDetail) and attempt.state == "running"
    assert [(p.name, p.state) for p in attempt.pipelines] == [
        ("build", "passed"),
        ("deploy", "skipped"),
    ]
    assert all(isinstance(p, PipelineRow) for p in attempt.pipelines)
    steps_shown = attempt.pipelines[0].steps
    assert all(isinstance(s, StepRow) for s in steps_shown)
    # Main steps by position, then the after steps.
    assert [(s.phase, s.name) for s in steps_shown] == [
        ("main", "clone"),
        ("main", "test"),
        ("after", "notify"),
    ]
    assert attempt.pipelines[1].steps == ()
    (image,) = attempt.images
    assert isinstance(image, ImageRow) and image.tags == "v1,latest"


def test_json_of_a_build_has_every_stored_column(store: SqlStore) -> None:
    """The API serves ``to_json``: the same keys the table rows have, nested rows as dicts,
    sequences as lists (what the API served when reads returned dicts)."""
    intake = store.record_push(push("a" * 40))
    claim = store.claim_next("w")
    assert claim is not None
    pipe = store.start_pipeline(claim.attempt_id, 0, "build")
    store.start_step(pipe, 0, "main", "script", "s")
    store.add_image(claim.attempt_id, "build", "r.test", "acme/app", ["v1"], "sha256:d")
    detail = store.build_detail(intake.build_id or 0)
    assert detail is not None
    data = detail.to_json()
    assert set(data) == _columns(builds) | {"attempts"}
    assert data["pipelines"] == ["build", "deploy"]
    attempt = data["attempts"][0]
    assert set(attempt) == _columns(attempts) | {"pipelines", "images"}
    assert set(attempt["pipelines"][0]) == _columns(pipelines) | {"steps"}
    assert set(attempt["pipelines"][0]["steps"][0]) == _columns(steps)
    assert set(attempt["images"][0]) == _columns(images)
    listed = store.list_builds()[0].to_json()
    assert set(listed) == _columns(builds) | {"attempt"}
    assert set(listed["attempt"]) == _columns(attempts)


def test_attempt_state(store: SqlStore) -> None:
    intake = store.record_push(push("a" * 40))
    assert store.attempt_state(intake.build_id or 0, 1) == "queued"
    assert store.attempt_state(intake.build_id or 0, 2) is None
