"""Challenge parsing, realm checks, credential choice and error text."""

from __future__ import annotations

import json

import pytest
import requests

from bot.errors import RegistryAuthError, RegistryError, RegistryUnavailable
from bot.masking import Masker
from bot.pushers.model import RegistryAuth
from bot.pushers.registry.auth import check_realm, credentials_for
from bot.pushers.registry.challenge import parse_challenges, pick_challenge
from bot.pushers.registry.endpoint import resolve_endpoint
from bot.pushers.registry.errors import error_for_response
from bot.pushers.registry.transport_errors import unreachable


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


@pytest.mark.parametrize(
    ("realm", "registry", "ok"),
    [
        ("https://auth.docker.io/token", "https://registry-1.docker.io", True),
        ("https://quay.io/v2/auth", "https://quay.io", True),
        ("https://gcr.io/v2/token", "https://gcr.io", True),
        ("http://auth.docker.io/token", "https://registry-1.docker.io", False),
        ("https://evil.example.net/token", "https://registry.example.com", False),
        ("https://169.254.169.254/latest", "https://registry.example.com", False),
        ("https://10.0.0.5/token", "https://registry.example.com", False),
        ("https://127.0.0.1:9999/token", "https://127.0.0.1:5000", True),
        ("http://127.0.0.1:9999/token", "http://127.0.0.1:5000", True),
        ("file:///etc/passwd", "https://registry.example.com", False),
    ],
)
def test_check_realm(realm: str, registry: str, ok: bool) -> None:
    assert (check_realm(realm, registry) is None) is ok


def test_gcr_json_key_gets_real_newlines_only_on_gcr_hosts() -> None:
    key = '{"private_key": "-----BEGIN KEY-----\\nABC\\n-----END KEY-----\\n"}'
    auth = RegistryAuth(username="_json_key", password=key)
    for host in ("gcr.io", "eu.gcr.io"):
        creds = credentials_for(resolve_endpoint(host, "https", {}), auth)
        assert "\\n" not in creds.password and "\nABC\n" in creds.password
    other = credentials_for(resolve_endpoint("quay.io", "https", {}), auth)
    assert other.password == key


def test_azure_service_principal_is_basic() -> None:
    auth = RegistryAuth(
        azure_client_id="cid", azure_client_secret="csecret", azure_login_server="acme.azurecr.io"
    )
    creds = credentials_for(resolve_endpoint("acme.azurecr.io", "https", {}), auth)
    assert (creds.username, creds.password) == ("cid", "csecret")


def _response(
    status: int, body: bytes, content_type: str = "application/json"
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body
    resp.headers["Content-Type"] = content_type
    resp.reason = "Reason"
    return resp


def test_denied_json_error_names_registry_action_repository() -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "requested access denied"}]})
    err = error_for_response(
        _response(403, body.encode()),
        registry="quay.io",
        action="push to",
        repository="acme/app",
    )
    assert isinstance(err, RegistryAuthError)
    assert str(err).startswith("quay.io denied push to acme/app: DENIED: requested access denied")


def test_text_plain_ecr_401_and_kinds() -> None:
    err = error_for_response(
        _response(401, b"Not Authorized\n", "text/plain"),
        registry="1.dkr.ecr.x.amazonaws.com",
        action="push to",
        repository="a",
    )
    assert isinstance(err, RegistryAuthError) and "Not Authorized" in str(err)
    err = error_for_response(
        _response(503, b"<html>busy</html>", "text/html"),
        registry="r",
        action="push to",
        repository="a",
    )
    assert isinstance(err, RegistryUnavailable)
    err = error_for_response(
        _response(
            404, b'{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}'
        ),
        registry="r",
        action="push to",
        repository="a",
    )
    assert type(err) is RegistryError and "create it first" in str(err)


def test_error_text_never_carries_a_credential() -> None:
    secret = "hunter2-very-secret"
    body = json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": f"bad password {secret}"}]})
    err = error_for_response(
        _response(401, body.encode()),
        registry="r",
        action="push to",
        repository="a",
        secrets=[secret],
    )
    assert secret not in str(err)
    # and a masker applied afterwards has nothing left to hide
    assert Masker([secret]).mask(str(err)) == str(err)
    transport = unreachable(
        "r",
        "push to",
        "a",
        requests.ConnectionError(f"https://u:{secret}@r/?x=1 (Caused by x)"),
        [secret],
    )
    assert secret not in str(transport)


def test_denied_push_names_the_robot_account() -> None:
    body = json.dumps({"errors": [{"code": "DENIED", "message": "requested access denied"}]})
    err = error_for_response(
        _response(403, body.encode()),
        registry="quay.io",
        action="push to",
        repository="acme/app",
        secrets=["ROBOTTOKEN0123456789"],
        username="acme+ci",
    )
    assert isinstance(err, RegistryAuthError)
    assert str(err) == (
        "quay.io denied push to acme/app for acme+ci: DENIED: requested access denied "
        "(HTTP 403); the credentials are valid but lack write permission"
    )
    assert "ROBOTTOKEN0123456789" not in str(err)
