"""Push-step options → image config, the same on both runners."""

import pytest

from bot.errors import StepConfigError
from steps.base import BuildFacts
from steps.image_options import image_config, parse_ports

FACTS = BuildFacts(
    "acme/app",
    "main",
    "",
    "c" * 40,
    "https://github.com/acme/app",
    "1",
    "u",
    "2026-01-02T03:04:05Z",
)


def test_every_option_reaches_the_config() -> None:
    config = image_config(
        {
            "cmd": "nginx -g 'daemon off;'",
            "entrypoint": "/docker-entrypoint.sh --verbose",
            "env": "foo=val1 bar='Three word value'",
            "labels": "Label1=value1 'Three word key'=value2",
            "ports": "8080, 53/udp",
            "volumes": "/data /cache",
            "user": "65534",
            "working-dir": "/pipeline/source",
            "stopsignal": "SIGINT",
            "author": "ci bot",
            "message": "built by wercker-bot",
        },
        FACTS,
        {},
    )
    assert config.cmd == ["nginx", "-g", "daemon off;"]
    assert config.entrypoint == ["/docker-entrypoint.sh", "--verbose"]
    assert config.env == {"foo": "val1", "bar": "Three word value"}
    assert config.labels["Three word key"] == "value2" and config.labels["Label1"] == "value1"
    assert config.labels["org.opencontainers.image.revision"] == "c" * 40
    assert config.labels["org.opencontainers.image.source"] == "https://github.com/acme/app"
    assert config.labels["org.opencontainers.image.created"] == "2026-01-02T03:04:05Z"
    assert config.ports == ["8080/tcp", "53/udp"]
    assert config.volumes == ["/data", "/cache"]
    assert (config.user, config.working_dir, config.stop_signal) == (
        "65534",
        "/pipeline/source",
        "SIGINT",
    )
    assert (config.author, config.message) == ("ci bot", "built by wercker-bot")


def test_a_step_may_set_the_oci_labels_itself() -> None:
    config = image_config({"labels": "org.opencontainers.image.source=https://x"}, FACTS, {})
    assert config.labels["org.opencontainers.image.source"] == "https://x"


def test_unset_options_keep_the_base_image_values() -> None:
    config = image_config({}, FACTS, {})
    assert config.cmd is None and config.entrypoint is None and config.user is None


@pytest.mark.parametrize("value", ["80/sctpx", "http", "70000", "-1"])
def test_bad_ports_are_clear_errors(value: str) -> None:
    with pytest.raises(StepConfigError, match="ports"):
        parse_ports(value)


@pytest.mark.parametrize(
    ("option", "value"), [("labels", "novalue"), ("env", "=x"), ("cmd", "unclosed 'quote")]
)
def test_malformed_words_name_the_option(option: str, value: str) -> None:
    with pytest.raises(StepConfigError, match=option):
        image_config({option: value}, FACTS, {})


@pytest.mark.parametrize("option", ["author", "message", "volumes"])
def test_secret_in_any_image_config_field_is_refused(option: str) -> None:
    with pytest.raises(StepConfigError, match="secret KEY"):
        image_config({option: "x line-two-of-key y"}, FACTS, {"KEY": "line-one\nline-two-of-key"})
