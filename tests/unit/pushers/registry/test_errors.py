"""Registry answers become errors that carry facts (``registry``, ``repository``, ``action``,
``http_status``, ``codes``), whose type alone says failed (the step) or errored (the bot's
environment), and whose text names what was refused and never a credential."""

from __future__ import annotations

import json

import pytest
import requests

from bot.errors import (
    InfrastructureError,
    RegistryAuthError,
    RegistryError,
    RegistryProblem,
    RegistryUnavailable,
    StepError,
    UnknownRegistryHost,
)
from bot.masking import Masker
from bot.pushers.registry.errors import (
    action_of,
    auth_failure,
    error_for_response,
)
from bot.pushers.registry.transport_errors import unreachable


def _resp(
    status: int, codes: tuple[str, ...] = (), headers: dict[str, str] | None = None
) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp.reason = "x"
    body = {"errors": [{"code": c, "message": c.lower()} for c in codes]}
    resp._content = json.dumps(body).encode()
    resp.headers.update(headers or {})
    return resp


def test_the_tree_decides_failed_or_errored_by_type() -> None:
    assert issubclass(RegistryUnavailable, InfrastructureError)
    assert not issubclass(RegistryUnavailable, StepError)
    for cls in (RegistryError, RegistryAuthError, UnknownRegistryHost):
        assert issubclass(cls, StepError) and not issubclass(cls, InfrastructureError)
    for kind in (RegistryError, RegistryAuthError, UnknownRegistryHost, RegistryUnavailable):
        assert issubclass(kind, RegistryProblem)


@pytest.mark.parametrize(
    ("phrase", "action"),
    [
        ("push to", "push"),
        ("push v1 to", "push"),
        ("pull from", "pull"),
        ("connect", "ping"),
        ("answer for", "ping"),
        ("create repository", "create repository"),
    ],
)
def test_action_fact_from_the_message_phrase(phrase: str, action: str) -> None:
    assert action_of(phrase) == action


@pytest.mark.parametrize(
    ("status", "codes", "cls"),
    [
        (403, ("DENIED",), RegistryAuthError),
        (400, ("MANIFEST_INVALID",), RegistryError),
        (404, ("NAME_UNKNOWN",), RegistryError),
        (503, (), RegistryUnavailable),
        (429, ("TOOMANYREQUESTS",), RegistryUnavailable),
    ],
)
def test_error_for_response_carries_the_facts(
    status: int, codes: tuple[str, ...], cls: type
) -> None:
    err = error_for_response(
        _resp(status, codes), registry="r.example:5000", action="push to", repository="acme/app"
    )
    assert type(err) is cls
    assert (err.registry, err.repository, err.action) == ("r.example:5000", "acme/app", "push")
    assert err.http_status == status and err.codes == codes
    assert "\n" not in str(err) and "r.example:5000" in str(err)


def test_auth_failure_carries_the_facts_and_no_secret() -> None:
    err = auth_failure(
        _resp(401, ("UNAUTHORIZED",)),
        registry="r.example",
        action="push to",
        repository="acme/app",
        username="ci",
        secrets=["hunter22"],
    )
    assert isinstance(err, RegistryAuthError)
    assert (err.registry, err.action, err.http_status, err.codes) == (
        "r.example",
        "push",
        401,
        ("UNAUTHORIZED",),
    )
    assert "hunter22" not in str(err)


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
