"""The webhook intake: verify the raw body, parse, store durably, answer fast.

Phases: authorize (``Forge.verify`` over the raw bytes) → ``Forge.parse`` → match a
configured repository → store the build (and queue its pending statuses) → 202. No clone,
YAML or network call happens here: a forge gives up on a slow hook (GitHub after 10 s).
The push is stored by the process's ``IntakeWriter`` (``bot.web.intake_writer``), which
commits the deliveries waiting at that moment in one transaction; the request waits for
its own answer, so a 202 still means "stored durably".
Only the forge of ``Services`` knows which forge it is; the route keeps its historical path,
``/hooks/github``, so existing webhooks keep working.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify, request

from bot.app import MAX_BODY
from bot.errors import StoreUnavailable, WebhookError
from bot.forges.base import Ignored, Ping, PushEvent
from bot.reporter import build_url
from bot.services import Services
from bot.store.rows import NewPush
from bot.web.intake_writer import IntakeWriter
from bot.wercker.selection import planned_pipelines

bp = Blueprint("hooks", __name__)
logger = logging.getLogger(__name__)


def _services() -> Services:
    services: Services = current_app.extensions["wercker_bot"]
    return services


def _writer() -> IntakeWriter:
    writer: IntakeWriter = current_app.extensions["wercker_bot_intake"]
    return writer


def _read_body() -> bytes | None:
    """The raw body, or ``None`` when it is over GitHub's 25 MB cap. A chunked body has no
    Content-Length for Flask to check up front, so read one byte past the cap to tell."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        return None
    body = request.stream.read(MAX_BODY + 1)
    return None if len(body) > MAX_BODY else body


def _answer(status: int, **body: object) -> tuple[Response, int]:
    return jsonify(body), status


@bp.post("/hooks/github")
def hook() -> tuple[Response, int]:
    svc = _services()
    forge = svc.forge
    body = _read_body()
    if body is None:
        return _answer(413, error=f"body larger than {MAX_BODY // (1024 * 1024)} MB")
    headers = dict(request.headers)
    if not forge.verify(headers, body):
        return _answer(401, error=forge.signature_help)
    try:
        delivery = forge.parse(headers, body, request.content_type or "")
    except WebhookError as err:
        return _answer(err.status, error=str(err))
    if isinstance(delivery, Ping):
        return _answer(200, pong=delivery.zen or "ok")
    if isinstance(delivery, Ignored):
        return _answer(202, ignored=delivery.reason)
    assert isinstance(delivery, PushEvent)
    try:
        return _accept(svc, delivery)
    except StoreUnavailable as err:
        # The push was not stored, or (a store that hung past the wait) may be stored late:
        # 503 with Retry-After says "try again", the delivery stays failed in GitHub's
        # Recent Deliveries for a redelivery (deduped if it did land), instead of a 500 that
        # reads like a bug. The reason (a database's host and user, a disk) is the
        # operator's: logged here, never in the answer.
        logger.error("intake of delivery %s: %s", delivery.delivery_id, err)
        response, status = _answer(
            503, error="the store is unavailable; redeliver this webhook later"
        )
        response.headers["Retry-After"] = str(err.retry_after)
        return response, status


def _accept(svc: Services, push: PushEvent) -> tuple[Response, int]:
    repo = svc.settings.repos.get(push.repo_full_name.lower())
    if repo is None:
        return _answer(202, ignored=f"repository {push.repo_full_name} is not configured")
    names = planned_pipelines(repo.pipelines, push.branch or push.tag)
    if not names:
        return _answer(202, ignored=f"no pipeline is configured for {push.ref}")
    intake = _writer().submit(
        NewPush(
            hook_id=push.hook_id,
            delivery_id=push.delivery_id,
            repo=repo.full_name,
            ref=push.ref,
            branch=push.branch,
            git_tag=push.tag,
            sha=push.sha,
            before_sha=push.before,
            message=push.head_message[:2000],
            pusher=push.pusher,
            html_url=push.html_url,
            pipelines=names,
            commits=push.commits,
            forced=push.forced,
        )
    )
    assert intake.build_id is not None
    url = build_url(svc.settings.base_url, intake.build_id)
    if intake.ignored:
        return _answer(202, ignored=intake.ignored, build=intake.build_id, url=url)
    return _answer(202, build=intake.build_id, attempt=intake.attempt, url=url)
