"""``FakeForge``: an in-memory ``Forge`` (``bot.forges.base``), for millisecond unit tests of
what sits on the seam: the webhook intake (``bot.web.hooks``) and the status outbox
(``bot.outbox``). GitHub's own wire format is tested against the recording HTTP fake
(``tests/harness/github_fake.py``) instead.

Its deliveries have a wire format of their own, so the intake is exercised end to end
through real bytes:

- ``body(event)``: a ``Ping`` / ``Ignored`` / ``PushEvent`` as JSON bytes;
- ``headers(body)``: the headers that sign it (``X-Fake-Signature``, an HMAC-SHA256 with the
  fake's secret), or ``headers(body, signed=False)``;
- ``parse`` answers ``WebhookError(415)`` for a non-JSON content type and
  ``WebhookError(400)`` for anything it cannot read, as the Protocol says.

Statuses: every ``post_status`` call is recorded in ``attempts``; those the forge accepted in
``posted``. By default each is delivered; script the next answers with ``server_error``,
``unreachable``, ``forbidden``, ``rate_limited`` or ``answer``. Arguments the Protocol rules
out (a state not in ``STATES``, a description over 140 characters) fail permanently, as a
real forge would, and are recorded in ``attempts`` only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bot.errors import WebhookError
from bot.forges.base import STATES, Delivery, Forge, Ignored, Ping, PostOutcome, PushEvent
from bot.forges.outcome import Outcome, backoff

SIGNATURE = "X-Fake-Signature"
LIMIT = 140


@dataclass(frozen=True)
class Posted:
    """One ``post_status`` call, as the forge received it."""

    repo: str
    sha: str
    state: str
    context: str
    description: str
    target_url: str
    attempt: int


Answer = Callable[[int, float], PostOutcome]
"""Makes the outcome of one post from (attempt, now)."""


class FakeForge:
    """An in-memory forge; safe to post from one thread while a test reads from another."""

    def __init__(
        self,
        *,
        secret: str = "fake-forge-secret",
        can_post: bool = True,
        clock: Callable[[], float] = time.time,
        token: str = "",
    ) -> None:
        self.secret = secret
        self.token = token
        self._can_post = can_post
        self.clock = clock
        self.attempts: list[Posted] = []
        self.posted: list[Posted] = []
        self.parsed: list[Delivery] = []
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    # the Forge Protocol -------------------------------------------------------------------

    @property
    def signature_help(self) -> str:
        return f"missing or wrong {SIGNATURE}"

    @property
    def can_post(self) -> bool:
        return self._can_post

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        given = _header(headers, SIGNATURE)
        return given is not None and hmac.compare_digest(
            self._sign(body).encode(), given.encode("utf-8", "surrogateescape")
        )

    def parse(self, headers: Mapping[str, str], body: bytes, content_type: str) -> Delivery:
        if content_type.split(";", 1)[0].strip().lower() != "application/json":
            raise WebhookError(415, f"unsupported Content-Type {content_type!r}")
        try:
            data = json.loads(body)
            kind = data.pop("kind")
            event = _KINDS[kind](**{k: tuple(v) if k == "commits" else v for k, v in data.items()})
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise WebhookError(400, f"not a fake delivery: {type(err).__name__}") from None
        with self._lock:
            self.parsed.append(event)
        return event

    def post_status(
        self,
        repo_full_name: str,
        sha: str,
        state: str,
        context: str,
        description: str,
        target_url: str,
        *,
        attempt: int,
    ) -> PostOutcome:
        call = Posted(repo_full_name, sha, state, context, description, target_url, attempt)
        now = self.clock()
        with self._changed:
            self.attempts.append(call)
            if state not in STATES:
                outcome = PostOutcome.failed(f"state must be one of {STATES}, not {state!r}")
            elif len(description.encode("utf-16-le")) // 2 > LIMIT:
                outcome = PostOutcome.failed(f"description over {LIMIT} characters")
            else:
                answer = self._answers.popleft() if self._answers else _delivered
                outcome = answer(attempt, now)
                if outcome.delivered:
                    self.posted.append(call)
            self._changed.notify_all()
        return outcome

    def backoff(self, attempt: int) -> float:
        return backoff(attempt)

    def clone_token(self, repo_full_name: str) -> str:
        return self.token

    # scripting ----------------------------------------------------------------------------

    def answer(self, *answers: Answer) -> None:
        """The next posts get these answers, in order; then posts are delivered again."""
        with self._lock:
            self._answers.extend(answers)

    def server_error(self, n: int = 1, status: int = 503) -> None:
        """The next ``n`` posts get a 5xx: ``RETRY`` naming no time (the outbox backs off)."""
        self.answer(*[lambda a, now: PostOutcome(Outcome.RETRY, f"fake {status}", status)] * n)

    def unreachable(self, n: int = 1) -> None:
        """The next ``n`` posts get no answer at all: ``RETRY`` without an HTTP status."""
        self.answer(*[lambda a, now: PostOutcome(Outcome.RETRY, "cannot reach the fake")] * n)

    def rate_limited(self, n: int = 1, retry_after: float = 60.0) -> None:
        """The next ``n`` posts are rate limited: ``RETRY`` at ``now + retry_after``."""
        self.answer(
            *[lambda a, now: PostOutcome.retry(retry_after, now, "fake rate limit", 429)] * n
        )

    def forbidden(self, n: int = 1) -> None:
        """The next ``n`` posts get a 403 that is not a rate limit: ``FAILED``."""
        self.answer(*[lambda a, now: PostOutcome.failed("fake 403: no write access", 403)] * n)

    # reading ------------------------------------------------------------------------------

    def statuses(self, repo: str, sha: str) -> list[Posted]:
        with self._lock:
            return [p for p in self.posted if p.repo == repo and p.sha == sha]

    def final_states(self, repo: str, sha: str) -> dict[str, str]:
        return {p.context: p.state for p in self.statuses(repo, sha)}

    def wait_for_posts(self, count: int, timeout: float = 5.0) -> list[Posted]:
        """Blocks until at least ``count`` statuses were delivered; fails the test after
        ``timeout`` seconds, saying what arrived."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.posted) >= count, timeout):
                raise AssertionError(f"{len(self.posted)} of {count} statuses: {self.posted}")
            return list(self.posted)

    # the wire format ----------------------------------------------------------------------

    def body(self, event: Delivery) -> bytes:
        kind = {Ping: "ping", Ignored: "ignored", PushEvent: "push"}[type(event)]
        return json.dumps({"kind": kind, **asdict(event)}).encode()

    def headers(self, body: bytes, *, signed: bool = True) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if signed:
            headers[SIGNATURE] = self._sign(body)
        return headers

    def _sign(self, body: bytes) -> str:
        return hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()


_KINDS: dict[str, Callable[..., Delivery]] = {
    "ping": Ping,
    "ignored": Ignored,
    "push": PushEvent,
}


def _delivered(attempt: int, now: float) -> PostOutcome:
    return PostOutcome.ok(201)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def push_event(
    repo: str = "acme/app", ref: str = "refs/heads/main", sha: str = "a" * 40, **kw: Any
) -> PushEvent:
    """A ``PushEvent`` with plausible defaults for what a test does not care about."""
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else ""
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else ""
    fields: dict[str, Any] = {
        "delivery_id": "delivery-1",
        "hook_id": "hook-1",
        "repo_full_name": repo,
        "ref": ref,
        "branch": branch,
        "tag": tag,
        "sha": sha,
        "before": "0" * 40,
        "head_message": "a change",
        "pusher": "someone",
        "html_url": f"https://forge.test/{repo}",
        "private": False,
        **kw,
    }
    return PushEvent(**fields)


def _typed(fake: FakeForge) -> Forge:
    """mypy checks here that the fake keeps to the Protocol."""
    return fake
