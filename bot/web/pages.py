"""Build pages, the JSON API and ``/healthz``. Everything shown passes the masker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    jsonify,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from bot.masking import Masker, MaskStream
from bot.services import Services
from bot.store.rows import AttemptDetail

bp = Blueprint("pages", __name__)

LOG_TAIL_BYTES = 256 * 1024
"""How much of the newest attempt's log a page or API answer shows (its end), and the
largest page the log API serves: never the whole log, which may be ``log_limit_mb``."""
OLD_TAIL = 16 * 1024
"""How much of each earlier attempt's log is shown: a build may have many re-runs."""
LOG_DOWNLOAD_PAGE = 1024 * 1024
"""The raw download reads and sends the log in pages of about this size."""

# Ids in URLs: SQLite's integers stop at 2**63 - 1, and a larger one fails in the bind
# (OverflowError, a 500). Out of range cannot exist, so the route does not match: 404.
_ID = f"int(max={2**63 - 1})"


def _svc() -> Services:
    services: Services = current_app.extensions["wercker_bot"]
    return services


def _masked(value: Any, masker: Masker) -> Any:
    if isinstance(value, str):
        return masker.mask(value)
    if isinstance(value, dict):
        return {k: _masked(v, masker) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, masker) for v in value]
    return value


def _masker() -> Masker:
    svc = _svc()
    masker = Masker(svc.settings.secret_values())
    return masker


def _attempt_view(attempt: AttemptDetail, build_id: int, max_bytes: int) -> dict[str, Any]:
    """The attempt as JSON, with each step's ``duration_s`` and the end of its log (at most
    ``max_bytes``) and where to read on: ``log_cursor`` for the API's ``?after=``,
    ``log_url`` for the whole log."""
    view = attempt.to_json()
    for pipeline, pipeline_view in zip(attempt.pipelines, view["pipelines"], strict=True):
        for step, step_view in zip(pipeline.steps, pipeline_view["steps"], strict=True):
            step_view["duration_s"] = _seconds(step.started_at, step.finished_at)
    tail = _svc().store.log_tail(attempt.id, max_bytes)
    view["log"] = tail.text
    view["log_cursor"] = tail.last_id
    view["log_complete"] = tail.complete
    view["log_window"] = f"{max_bytes // 1024} KB"
    view["log_url"] = url_for("pages.attempt_log", build_id=build_id, number=attempt.number)
    view["log_api"] = url_for("pages.api_log", attempt_id=attempt.id, after=tail.last_id)
    return view


def _detail(build_id: int) -> dict[str, Any]:
    """The build as the API serves it (and the page shows it), masked: the store's
    ``BuildDetail`` as JSON, each attempt with its log's end (``_attempt_view``), the
    build's ``url`` and the commit's ``statuses``."""
    svc = _svc()
    detail = svc.store.build_detail(build_id)
    if detail is None:
        abort(404)
    newest = max((a.number for a in detail.attempts), default=0)
    view = detail.to_json()
    view["attempts"] = [
        _attempt_view(a, build_id, LOG_TAIL_BYTES if a.number == newest else OLD_TAIL)
        for a in detail.attempts
    ]
    view["url"] = f"{svc.settings.base_url}/builds/{build_id}"
    view["statuses"] = [s.to_json() for s in svc.store.statuses_for(detail.repo, detail.sha)]
    result: dict[str, Any] = _masked(view, _masker())
    return result


def _builds(limit: int) -> list[dict[str, Any]]:
    """The newest builds as JSON, masked."""
    builds: list[dict[str, Any]] = _masked(
        [b.to_json() for b in _svc().store.list_builds(limit)], _masker()
    )
    return builds


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    svc = _svc()
    try:
        backlog = svc.store.outbox_backlog()
    except Exception as err:  # the point of a health check is to say so, not to crash
        return jsonify(ok=False, error=type(err).__name__), 503
    return jsonify(ok=True, status_backlog=backlog), 200


def _int_arg(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        abort(400, description=f"query parameter {name!r} must be a whole number")
    return max(low, min(int(raw), high))


@bp.get("/api/builds")
def api_builds() -> Response:
    limit = _int_arg("limit", 50, 1, 500)
    return jsonify(builds=_builds(limit))


@bp.get(f"/api/builds/<{_ID}:build_id>")
def api_build(build_id: int) -> Response:
    return jsonify(_detail(build_id))


@bp.get(f"/api/attempts/<{_ID}:attempt_id>/log")
def api_log(attempt_id: int) -> Response:
    """One bounded page of an attempt's log after row ``after`` (0: from the start), at most
    ``max_bytes`` (default and cap 256 KB): ``text``, ``cursor`` (the next ``after``) and
    ``more`` (whether the next page is already there, or the log has to grow first)."""
    after = _int_arg("after", 0, 0, 2**62)
    max_bytes = _int_arg("max_bytes", LOG_TAIL_BYTES, 1024, LOG_TAIL_BYTES)
    page = _svc().store.log_page(attempt_id, after, max_bytes)
    return jsonify(text=_masker().mask(page.text), cursor=page.next_id, more=page.more)


@bp.get(f"/builds/<{_ID}:build_id>/attempts/<{_ID}:number>/log.txt")
def attempt_log(build_id: int, number: int) -> Response:
    """The whole log of one attempt as plain text, streamed page by page from the store:
    memory stays at one page whatever the log's size."""
    svc = _svc()
    attempt_id = svc.store.log_attempt_id(build_id, number)
    if attempt_id is None:
        abort(404)
    store, masker = svc.store, _masker()

    def pages() -> Iterator[str]:
        # As a stream: a secret that a page boundary splits is still masked.
        stream = MaskStream(masker)
        for text in store.iter_log(attempt_id, LOG_DOWNLOAD_PAGE):
            yield stream.feed(text)
        yield stream.release()

    return Response(
        stream_with_context(pages()),
        mimetype="text/plain",
        headers={
            "Content-Disposition": f'inline; filename="build-{build_id}-{number}.log"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@bp.get("/")
@bp.get("/builds")
def builds_page() -> str:
    return render_template("builds.html", builds=_builds(100), now=time.time())


@bp.get(f"/builds/<{_ID}:build_id>")
def build_page(build_id: int) -> str:
    detail = _detail(build_id)
    running = any(a["state"] in ("queued", "running") for a in detail["attempts"])
    return render_template(
        "build.html", b=detail, running=running, fmt_time=_fmt_time, duration=_duration
    )


def _fmt_time(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + " UTC" if ts else "–"


def _seconds(start: float | None, end: float | None) -> float | None:
    """A finished step's duration; ``None`` while it runs or when it never started."""
    return round(end - start, 3) if start and end else None


def _duration(start: float | None, end: float | None) -> str:
    if not start:
        return "–"
    seconds = (end or time.time()) - start
    return f"{seconds:.1f}s" if seconds < 120 else f"{seconds / 60:.1f}min"
