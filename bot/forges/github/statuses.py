"""Posting one commit status to GitHub (or GitHub Enterprise Server at ``https://HOST/api/v3``).

``StatusClient.post`` makes exactly one HTTP attempt and never raises for anything GitHub or
the network does: it returns a ``PostOutcome`` (delivered / retry at / failed). Persisting
attempts and honouring ``retry_at`` is the durable outbox's job.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from urllib.parse import quote, unquote, urlsplit

import requests

from bot.forges.base import STATES
from bot.forges.github.delivery import strip_credentials
from bot.forges.github.descriptions import LIMIT, utf16_len
from bot.forges.github.outcome import PostOutcome, backoff, classify
from bot.masking import Masker
from bot.settings import GitHubSettings

__all__ = ["API_VERSION", "STATES", "StatusClient"]

API_VERSION = "2022-11-28"
TIMEOUT = (5.0, 15.0)  # (connect, read) seconds
_SHA = re.compile(r"^[0-9a-fA-F]{40}$")
_MAX_REASON = 300


class StatusClient:
    """Creates commit statuses with a token (``Authorization: Bearer``).

    Use one client per thread: it keeps a ``requests.Session`` for connection reuse, and
    GitHub asks for serial mutative requests anyway.
    """

    def __init__(
        self,
        api_url: str,
        token: str,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        timeout: tuple[float, float] = TIMEOUT,
        user_agent: str = "wercker-bot",
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._session = session or requests.Session()
        self._clock = clock
        self._timeout = timeout
        self._user_agent = user_agent
        self._streak = 0  # consecutive retryable answers; see post()
        # Every reason passes through this, whatever GitHub or a proxy chose to echo back.
        self._masker = Masker([token, *_userinfo(api_url)])

    @classmethod
    def from_settings(
        cls,
        github: GitHubSettings,
        *,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
    ) -> StatusClient:
        return cls(github.api_url, github.token, session=session, clock=clock)

    def __repr__(self) -> str:  # the default would be harmless, but say so explicitly
        return f"StatusClient({strip_credentials(self.api_url)!r}, token=****)"

    def headers(self) -> dict[str, str]:
        out = {
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": API_VERSION,
            "User-Agent": self._user_agent,
        }
        if self._token:
            out["Authorization"] = f"Bearer {self._token}"
        return out

    def status_url(self, repo_full_name: str, sha: str) -> str:
        owner, _, name = repo_full_name.partition("/")
        return f"{self.api_url}/repos/{quote(owner, safe='')}/{quote(name, safe='')}/statuses/{sha}"

    def post(
        self,
        repo_full_name: str,
        sha: str,
        state: str,
        context: str,
        description: str,
        target_url: str,
        *,
        attempt: int | None = None,
    ) -> PostOutcome:
        """One attempt at ``POST /repos/{owner}/{repo}/statuses/{sha}``.

        ``attempt`` (1-based) only scales the backoff for 5xx, connection errors and
        header-less secondary limits. When the caller does not track attempts, the client's
        own run of consecutive retryable answers stands in for it: during an outage every
        post fails, so the streak grows the delay just as per-row counts would. The
        description must already fit GitHub's 140 characters: ``bot.reporter`` cuts it, in
        one place, after masking. Bad arguments (a longer description among them) fail
        permanently without a request: GitHub would only answer 422.
        """
        problem = _check_args(repo_full_name, sha, state, description)
        if problem:
            return PostOutcome.failed(problem)
        body: dict[str, str] = {
            "state": state,
            "context": context,
            "description": description,
        }
        if target_url:
            body["target_url"] = target_url
        if attempt is None:
            attempt = self._streak + 1
        now = self._clock()
        try:
            resp = self._session.post(
                self.status_url(repo_full_name, sha),
                json=body,
                headers=self.headers(),
                timeout=self._timeout,
            )
        except requests.RequestException as err:
            # A read timeout may hide a status GitHub did store; posting the same state again
            # is harmless, so it is retried like any other network failure.
            where = strip_credentials(self.api_url)
            reason = self._clean(f"cannot reach {where}: {type(err).__name__}: {err}")
            self._streak += 1
            return PostOutcome.retry(backoff(attempt), now, reason)
        if resp.status_code == 201 or (resp.ok and resp.request.method == "POST"):
            self._streak = 0
            return PostOutcome.ok(resp.status_code)
        message = self._clean(_error_message(resp))
        outcome = classify(resp.status_code, resp.headers, message, attempt, self._clock())
        self._streak = self._streak + 1 if outcome.should_retry else 0
        return outcome

    def _clean(self, text: str) -> str:
        text = self._masker.mask(" ".join(text.split()))
        return text if len(text) <= _MAX_REASON else text[: _MAX_REASON - 1] + "…"


def _userinfo(url: str) -> list[str]:
    """A password in the api_url (an unusual proxy set-up) is as secret as the token."""
    password = urlsplit(url).password
    return [unquote(password)] if password else []


def _check_args(repo_full_name: str, sha: str, state: str, description: str) -> str:
    if repo_full_name.count("/") != 1 or not all(repo_full_name.split("/")):
        return f"repository must be owner/name, not {repo_full_name!r}"
    if not _SHA.match(sha):
        # GitHub: "sha must be a 40 character SHA1"; a branch name would move under us.
        return f"sha must be a 40-character commit SHA, not {sha!r}"
    if state not in STATES:
        return f"state must be one of {', '.join(STATES)}, not {state!r}"
    if utf16_len(description) > LIMIT:
        # Not cut here: a second cut could split what the reporter's cut kept whole.
        return f"description is {utf16_len(description)} characters, over GitHub's {LIMIT}"
    return ""


def _error_message(resp: requests.Response) -> str:
    """GitHub's ``message`` plus any ``errors[].message``; the raw text if it is not JSON."""
    try:
        data = resp.json()
    except (ValueError, json.JSONDecodeError):
        return resp.text.strip()[:200] or (resp.reason or "")
    if not isinstance(data, dict):
        return str(data)[:200]
    parts = [str(data.get("message") or resp.reason or "")]
    errors = data.get("errors")
    if isinstance(errors, list):
        for item in errors:
            if isinstance(item, dict) and item.get("message"):
                parts.append(str(item["message"]))
            elif isinstance(item, str):
                parts.append(item)
    return "; ".join(p for p in parts if p)
