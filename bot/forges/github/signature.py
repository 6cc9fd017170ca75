"""Webhook signature check: ``X-Hub-Signature-256`` (github-facts §1.2)."""

from __future__ import annotations

import hashlib
import hmac

PREFIX = "sha256="


def verify_signature(secret: str, body: bytes, header: str | None) -> bool:
    """True only when ``header`` is ``sha256=<hex HMAC-SHA256 of body keyed by secret>``.

    ``body`` must be the raw request body exactly as received (for form deliveries, the
    url-encoded form, not the decoded JSON). An empty secret never verifies: an unsigned hook
    is an explicit ``insecure_skip_signature`` decision for the caller, never a fallback here.
    The legacy ``sha1=`` header is not accepted.
    """
    if not secret or not header or not header.startswith(PREFIX):
        return False
    expected = PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    # Compare bytes: compare_digest refuses non-ASCII str, and a header is attacker-controlled.
    return hmac.compare_digest(
        expected.encode("ascii"), header.strip().encode("utf-8", "surrogateescape")
    )
