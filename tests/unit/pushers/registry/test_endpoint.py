"""``resolve_endpoint``: where requests for a named registry go (``mirror_of``), over which
schemes, and how TLS is verified (a CA file, or not at all for ``auto``/``insecure``)."""

from __future__ import annotations

import pytest

from bot.pushers.model import Scheme
from bot.pushers.registry.endpoint import resolve_endpoint
from bot.settings import RegistrySettings


@pytest.mark.parametrize(
    ("scheme", "schemes", "verify"),
    [("https", ("https",), True), ("http", ("http",), True), ("auto", ("https", "http"), False)],
)
def test_the_scheme_gives_the_schemes_tried_and_verification(
    scheme: Scheme, schemes: tuple[str, ...], verify: bool
) -> None:
    endpoint = resolve_endpoint("registry.test", scheme, {})
    assert (endpoint.name, endpoint.host) == ("registry.test", "registry.test")
    assert (endpoint.schemes, endpoint.verify, endpoint.settings) == (schemes, verify, None)


def test_a_ca_file_is_what_verifies() -> None:
    entry = RegistrySettings("reg.lan:5000", ca_file="/etc/ca.pem")
    endpoint = resolve_endpoint("reg.lan:5000", "https", {"reg.lan:5000": entry})
    assert endpoint.verify == "/etc/ca.pem" and endpoint.settings is entry


def test_an_insecure_entry_is_not_verified() -> None:
    entry = RegistrySettings("reg.lan", insecure=True)
    endpoint = resolve_endpoint("reg.lan", "https", {"reg.lan": entry})
    assert endpoint.verify is False and endpoint.schemes == ("https",)


def test_a_mirror_is_reached_at_its_own_host_with_its_own_scheme() -> None:
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    entry = RegistrySettings("127.0.0.1:5000", mirror_of=ecr)
    endpoint = resolve_endpoint(ecr, "https", {"127.0.0.1:5000": entry})
    assert (endpoint.name, endpoint.host) == (ecr, "127.0.0.1:5000")
    assert endpoint.schemes == ("https", "http") and endpoint.verify is False
    assert endpoint.is_loopback


def test_loopback_is_told_apart_from_other_hosts() -> None:
    assert resolve_endpoint("localhost:5000", "https", {}).is_loopback
    assert not resolve_endpoint("quay.io", "https", {}).is_loopback
