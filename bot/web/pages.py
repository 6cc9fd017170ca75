"""Build pages, the JSON API and ``/healthz``. Everything shown passes the masker."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, abort, current_app, jsonify, render_template, request

from bot.build import Services
from bot.masking import Masker

bp = Blueprint("pages", __name__)


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


def _detail(build_id: int) -> dict[str, Any]:
    svc = _svc()
    detail = svc.store.build_detail(build_id)
    if detail is None:
        abort(404)
    for attempt in detail["attempts"]:
        attempt["log"], attempt["log_cursor"] = svc.store.log_text(attempt["id"])
        for pipeline in attempt["pipelines"]:
            for step in pipeline["steps"]:
                step["duration_s"] = _seconds(step["started_at"], step["finished_at"])
    detail["url"] = f"{svc.settings.base_url}/builds/{build_id}"
    detail["statuses"] = svc.store.statuses_for(detail["repo"], detail["sha"])
    result: dict[str, Any] = _masked(detail, _masker())
    return result


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
    return jsonify(builds=_masked(_svc().store.list_builds(limit), _masker()))


@bp.get("/api/builds/<int:build_id>")
def api_build(build_id: int) -> Response:
    return jsonify(_detail(build_id))


@bp.get("/api/attempts/<int:attempt_id>/log")
def api_log(attempt_id: int) -> Response:
    after = _int_arg("after", 0, 0, 2**62)
    text, cursor = _svc().store.log_text(attempt_id, after)
    return jsonify(text=_masker().mask(text), cursor=cursor)


@bp.get("/")
@bp.get("/builds")
def builds_page() -> str:
    builds = _masked(_svc().store.list_builds(100), _masker())
    return render_template("builds.html", builds=builds, now=time.time())


@bp.get("/builds/<int:build_id>")
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
