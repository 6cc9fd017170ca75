"""Turning one GitHub webhook delivery into a typed event (behaviour §1, github-facts §1–2).

``parse_delivery`` has exactly four outcomes:

- ``Ping``: the hook was set up; answer 200, build nothing.
- ``Ignored(reason)``: a well-formed delivery that builds nothing (another event, a branch or
  tag deletion, ``[skip ci]``, a ref that is neither a branch nor a tag); answer 202.
- ``PushEvent``: a push to build. Whether its repository is configured is the caller's call.
  Its ``sha`` is ``after``, except for a tag push whose ``head_commit`` is present, where
  ``after`` may be an annotated tag object and ``head_commit.id`` is the commit it points to.
- ``WebhookError(400 | 415, reason)`` raised: the delivery cannot be read; ``reason`` is one line
  naming the header or field at fault.

The signature must be checked (``verify_signature``) on the raw body *before* this is called.
The event types are the forge-neutral ones of ``bot.forges.events``; the payload's clone URLs
are deliberately not read: only the config decides where to clone from, otherwise a signed
payload could point the bot at an internal host.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

from bot.checkout import check_ref_format
from bot.errors import WebhookError
from bot.forges.events import Delivery, Ignored, Ping, PushEvent
from bot.forges.github.headers import header

ZERO_SHA = "0" * 40
_SHA = re.compile(r"^[0-9a-f]{40}$")
_SKIP = ("[skip ci]", "[ci skip]")
_BRANCH_PREFIX = "refs/heads/"
_TAG_PREFIX = "refs/tags/"
MAX_COMMITS = 2048  # GitHub lists at most this many commits in a push payload


def parse_delivery(headers: Mapping[str, str], body: bytes, content_type: str) -> Delivery:
    """Reads one delivery; see the module docstring for the four outcomes."""
    event = (header(headers, "X-GitHub-Event") or "").strip()
    if not event:
        raise WebhookError(400, "missing X-GitHub-Event header")
    delivery_id = (header(headers, "X-GitHub-Delivery") or "").strip()
    hook_id = (header(headers, "X-GitHub-Hook-ID") or "").strip()
    if event not in ("push", "ping"):
        # Decided before reading the body: an event we never handle needs no parsing.
        return Ignored(f"event {event[:64]} is not handled")
    payload = decode_body(body, content_type)
    if event == "ping":
        zen = payload.get("zen")
        if not hook_id and isinstance(payload.get("hook_id"), int):
            hook_id = str(payload["hook_id"])
        return Ping(delivery_id, hook_id, zen if isinstance(zen, str) else "")
    if not delivery_id:
        # Without it a redelivery cannot be told from a new push (behaviour §2).
        raise WebhookError(400, "missing X-GitHub-Delivery header")
    return _push(payload, delivery_id, hook_id)


def decode_body(body: bytes, content_type: str) -> dict[str, Any]:
    """The JSON object of a delivery, from a JSON or form-encoded (``payload=``) body."""
    media = content_type.split(";", 1)[0].strip().lower()
    if not media:
        # No Content-Type at all: GitHub always sends one, but a hand-made curl may not.
        form = body.startswith(b"payload=")
        media = "application/x-www-form-urlencoded" if form else "application/json"
    if media == "application/x-www-form-urlencoded":
        text = _utf8(body, "form body")
        fields = parse_qs(text, keep_blank_values=True)
        values = fields.get("payload")
        if not values:
            raise WebhookError(400, "form body has no 'payload' field")
        text = values[0]
    elif media == "application/json" or media.endswith("+json"):
        text = _utf8(body, "body")
    else:
        raise WebhookError(
            415,
            f"unsupported Content-Type {media!r}; use application/json or "
            "application/x-www-form-urlencoded",
        )
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise WebhookError(
            400, f"payload is not valid JSON: {err.msg} at line {err.lineno} column {err.colno}"
        ) from None
    except RecursionError:
        # json.loads recurses per nesting level; a 25 MB "[[[[…" must be a 400, not a 500.
        raise WebhookError(400, "payload is nested too deeply") from None
    if not isinstance(payload, dict):
        raise WebhookError(400, f"payload must be a JSON object, not {_kind(payload)}")
    return payload


def _push(payload: Mapping[str, Any], delivery_id: str, hook_id: str) -> Delivery:
    ref = _str(payload, "ref")
    before = _str(payload, "before")
    after = _str(payload, "after")
    repo = _obj(payload, "repository")
    full_name = _str(repo, "full_name", "repository.")
    if full_name.count("/") != 1:
        raise WebhookError(
            400, f"field repository.full_name must be owner/name, not {_show(full_name)}"
        )
    html_url = _str(repo, "html_url", "repository.")
    private = _bool(repo, "private", "repository.")
    deleted = _bool(payload, "deleted")
    forced = _bool(payload, "forced")
    head = payload.get("head_commit")
    if head is not None and not isinstance(head, dict):
        raise WebhookError(400, f"field head_commit must be an object or null, not {_kind(head)}")

    branch, tag, kind = _ref_names(ref)
    if not kind:
        return Ignored(f"ref {ref[:200]} is not a branch or tag", full_name)
    if deleted or after == ZERO_SHA:
        # Nothing to build and no commit to post a status on.
        return Ignored(f"{kind} deleted", full_name)
    message, sha = _head(head, after, tag)
    lowered = message.lower()
    if any(marker in lowered for marker in _SKIP):
        return Ignored("skip ci", full_name)

    return PushEvent(
        delivery_id=delivery_id,
        hook_id=hook_id,
        repo_full_name=full_name,
        ref=ref,
        branch=branch,
        tag=tag,
        sha=sha,
        before=before,
        head_message=message,
        pusher=_pusher(payload),
        html_url=strip_credentials(html_url),
        private=private,
        commits=_commit_ids(payload),
        forced=forced,
    )


def _ref_names(ref: str) -> tuple[str, str, str]:
    """``(branch, tag, kind)`` of a pushed ref: ``kind`` is ``branch``, ``tag`` or ``""``
    (neither). Raises ``WebhookError`` for a ref that is not a valid git ref name."""
    if ref.startswith(_BRANCH_PREFIX):
        branch, tag, kind = ref[len(_BRANCH_PREFIX) :], "", "branch"
    elif ref.startswith(_TAG_PREFIX):
        branch, tag, kind = "", ref[len(_TAG_PREFIX) :], "tag"
    else:
        branch, tag, kind = "", "", ""
    if kind and not (branch or tag):
        raise WebhookError(400, f"field ref has no name after the prefix: {_show(ref)}")
    # GitHub only sends valid ref names; anything else is forged, and the name reaches the
    # cache path, image tags and the build log (a newline could fake a log line).
    problem = check_ref_format(ref)
    if problem is not None:
        raise WebhookError(400, f"field ref {_show(ref)} is not a valid git ref name: {problem}")
    return branch, tag, kind


def _head(head: Mapping[str, Any] | None, after: str, tag: str) -> tuple[str, str]:
    """The head commit's message and the sha to build and post statuses on: ``after``, or
    for a tag the head commit's id. Raises ``WebhookError`` when that is not a full sha."""
    message, sha, sha_field = "", after, "after"
    if head is not None:
        message = _str(head, "message", "head_commit.")
        if tag:
            # For an annotated tag ``after`` is the tag object; statuses need the commit.
            sha, sha_field = _str(head, "id", "head_commit."), "head_commit.id"
    if not _SHA.match(sha):
        raise WebhookError(
            400, f"field {sha_field} must be a 40-character hex SHA, not {_show(sha)}"
        )
    return message, sha


def _commit_ids(payload: Mapping[str, Any]) -> tuple[str, ...]:
    """The full shas of the payload's ``commits`` (absent or null: none), at most
    ``MAX_COMMITS``; ids that are not full shas are left out, as they prove nothing."""
    commits = payload.get("commits")
    if commits is None:
        return ()
    if not isinstance(commits, list):
        raise WebhookError(400, f"field commits must be an array, not {_kind(commits)}")
    ids: list[str] = []
    for index, commit in enumerate(commits[:MAX_COMMITS]):
        if not isinstance(commit, dict):
            raise WebhookError(
                400, f"field commits[{index}] must be an object, not {_kind(commit)}"
            )
        value = commit.get("id")
        if isinstance(value, str) and _SHA.match(value):
            ids.append(value)
    return tuple(ids)


def _pusher(payload: Mapping[str, Any]) -> str:
    pusher = payload.get("pusher")
    if isinstance(pusher, dict) and isinstance(pusher.get("name"), str):
        return str(pusher["name"])
    sender = payload.get("sender")
    if isinstance(sender, dict) and isinstance(sender.get("login"), str):
        return str(sender["login"])
    return ""


def strip_credentials(url: str) -> str:
    """``url`` without any ``user:password@``: it ends up in image labels anyone can read."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def _show(value: str) -> str:
    """An untrusted value for a reason: quoted, escaped onto one line, and short."""
    text = repr(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _utf8(body: bytes, what: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WebhookError(400, f"{what} is not UTF-8 (byte {err.start})") from None


def _kind(value: object) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def _str(obj: Mapping[str, Any], key: str, where: str = "") -> str:
    if key not in obj:
        raise WebhookError(400, f"missing field {where}{key}")
    value = obj[key]
    if not isinstance(value, str):
        raise WebhookError(400, f"field {where}{key} must be a string, not {_kind(value)}")
    return value


def _obj(obj: Mapping[str, Any], key: str, where: str = "") -> Mapping[str, Any]:
    if key not in obj:
        raise WebhookError(400, f"missing field {where}{key}")
    value = obj[key]
    if not isinstance(value, dict):
        raise WebhookError(400, f"field {where}{key} must be an object, not {_kind(value)}")
    return value


def _bool(obj: Mapping[str, Any], key: str, where: str = "") -> bool:
    """An optional boolean: absent or null is False, anything else but a bool is a 400."""
    value = obj.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise WebhookError(400, f"field {where}{key} must be a boolean, not {_kind(value)}")
    return value
