"""``bot.engine``: what the docker runner and the engine pusher share: reading the registry's
error codes out of the engine's text, the credentials the engine is handed, and the names it
pushes to."""

from __future__ import annotations

import pytest

from bot.engine import auth_config, basic_credentials, engine_codes, engine_repository
from bot.errors import StepConfigError
from bot.images import RegistryAuth


@pytest.mark.parametrize(
    ("message", "codes"),
    [
        (
            "manifest for 127.0.0.1:5000/nope/x:1 not found: manifest unknown: manifest unknown",
            ("MANIFEST_UNKNOWN",),
        ),
        ("x:latest: name unknown: repository name not known", ("NAME_UNKNOWN",)),
        ("denied: requested access to the resource is denied", ("DENIED",)),
        ("toomanyrequests: slow down", ("TOOMANYREQUESTS",)),
        # The engine's own words when it had nothing to send: the registry said 401.
        ('Head "http://h/v2/x/manifests/1": no basic auth credentials', ("UNAUTHORIZED",)),
        ("unauthorized: authentication required", ("UNAUTHORIZED",)),
        # Words before a colon that are no registry code stay out.
        ('Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', ()),
        ("error: something: odd", ()),
        ("x:latest: something broke", ()),
    ],
)
def test_engine_codes_read_the_errcode_format_only(message: str, codes: tuple[str, ...]) -> None:
    assert engine_codes(message) == codes


def test_engine_codes_are_each_given_once_in_order() -> None:
    message = "denied: no. unauthorized: no. denied: still no: no basic auth credentials"
    assert engine_codes(message) == ("DENIED", "UNAUTHORIZED")


def test_auth_config_is_empty_when_anonymous_and_names_the_server_off_docker_hub() -> None:
    assert auth_config("r.example:5000", RegistryAuth()) == {}
    creds = RegistryAuth(username="u", password="p")
    assert auth_config("r.example:5000", creds) == {
        "username": "u",
        "password": "p",
        "serveraddress": "r.example:5000",
    }
    assert auth_config("docker.io", creds) == {"username": "u", "password": "p"}
    resolved = auth_config("r.example", creds, lambda registry, auth, say=None: ("t", "k"))
    assert (resolved["username"], resolved["password"]) == ("t", "k")


def test_basic_credentials_refuse_ecr_keys_they_cannot_turn_into_a_login() -> None:
    assert basic_credentials("r", RegistryAuth(azure_client_id="id", azure_client_secret="s")) == (
        "id",
        "s",
    )
    with pytest.raises(StepConfigError, match=r"ECR credentials for r\.example need"):
        basic_credentials("r.example", RegistryAuth(aws_access_key="AKIA", aws_secret_key="x"))


def test_engine_repository_leaves_docker_hub_names_bare() -> None:
    assert engine_repository("docker.io", "acme/app") == "acme/app"
    assert engine_repository("r.example:5000", "acme/app") == "r.example:5000/acme/app"
