"""``WWW-Authenticate`` challenges: parsing (Bearer scopes, quoted values, several challenges
in one header) and which one the client answers."""

from __future__ import annotations

from bot.pushers.registry.challenge import parse_challenges, pick_challenge


def test_bearer_challenge_with_two_space_separated_scopes() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:dst/app:push,pull repository:src/base:pull"'
    )
    (challenge,) = parse_challenges(header)
    assert challenge.scheme == "bearer"
    assert challenge.realm == "https://auth.example.com/token"
    assert challenge.service == "registry.example.com"
    assert challenge.scopes == ["repository:dst/app:push,pull", "repository:src/base:pull"]


def test_error_and_escaped_quotes() -> None:
    (challenge,) = parse_challenges(
        'Bearer realm="https://a/t",error="insufficient_scope",extra="say \\"hi\\""'
    )
    assert challenge.error == "insufficient_scope"
    assert challenge.params["extra"] == 'say "hi"'


def test_basic_challenge_and_preference_for_bearer() -> None:
    header = 'Basic realm="test-basic-realm", Bearer realm="https://x/token",service="s"'
    challenges = parse_challenges(header)
    assert [c.scheme for c in challenges] == ["basic", "bearer"]
    assert challenges[0].realm == "test-basic-realm"
    picked = pick_challenge(header)
    assert picked is not None and picked.scheme == "bearer" and picked.service == "s"


def test_ecr_style_basic_and_garbage() -> None:
    (ecr,) = parse_challenges(
        'Basic realm="https://123456789012.dkr.ecr.us-east-1.amazonaws.com/",'
        'service="ecr.amazonaws.com"'
    )
    assert ecr.scheme == "basic" and ecr.service == "ecr.amazonaws.com"
    assert pick_challenge("") is None
    assert pick_challenge("Negotiate") is None
