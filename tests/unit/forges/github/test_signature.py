"""``bot.forges.github.signature``: X-Hub-Signature-256 checks (github-facts §1.2)."""

from __future__ import annotations

import hashlib
import hmac

from bot.forges.github import verify_signature
from tests.harness.github_fake import form_body, sign

# GitHub's official test vector (validating-webhook-deliveries.md).
SECRET = "It's a Secret to Everybody"
BODY = b"Hello, World!"
HEADER = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"


def test_official_vector_verifies() -> None:
    assert verify_signature(SECRET, BODY, HEADER)


def test_harness_sign_matches_official_vector() -> None:
    assert sign(SECRET, BODY) == HEADER


def test_missing_or_empty_header_fails() -> None:
    assert not verify_signature(SECRET, BODY, None)
    assert not verify_signature(SECRET, BODY, "")


def test_wrong_secret_fails() -> None:
    assert not verify_signature("another secret", BODY, HEADER)


def test_tampered_body_fails() -> None:
    assert not verify_signature(SECRET, b"Hello, World?", HEADER)
    assert not verify_signature(SECRET, BODY + b"\n", HEADER)


def test_sha1_only_header_is_refused() -> None:
    legacy = "sha1=" + hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert not verify_signature(SECRET, BODY, legacy)


def test_bare_hex_without_prefix_is_refused() -> None:
    assert not verify_signature(SECRET, BODY, HEADER.removeprefix("sha256="))


def test_oas_placeholder_signature_is_refused() -> None:
    # The OpenAPI hook-delivery example carries a 40-hex placeholder, not a real HMAC.
    assert not verify_signature(SECRET, BODY, "sha256=6dcb09b5b57875f334f61aebed695e2e4193db5e")


def test_non_ascii_header_is_refused_not_raised() -> None:
    assert not verify_signature(SECRET, BODY, "sha256=é" + "0" * 63)


def test_empty_secret_never_verifies() -> None:
    assert not verify_signature("", BODY, sign("", BODY))


def test_form_body_is_signed_as_sent() -> None:
    body = form_body({"zen": "Keep it logically awesome."})
    assert body.startswith(b"payload=%7B")
    assert verify_signature("s3cret-value", body, sign("s3cret-value", body))
