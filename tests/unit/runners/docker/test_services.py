"""The pure parts of services next to the box: Wercker's link variables, exposed ports and
default names (the engine side is tests/integration/docker/test_services.py)."""

from __future__ import annotations

from typing import Any

from bot.runners.docker.services import alias_of, exposed_ports, link_env


def test_link_env_is_what_docker_links_gave_wercker_boxes() -> None:
    env = link_env("my-db", [(5432, "tcp"), (80, "tcp"), (53, "udp")])
    assert env["MY_DB_PORT_5432_TCP_ADDR"] == "127.0.0.1"
    assert env["MY_DB_PORT_5432_TCP_PORT"] == "5432"
    assert env["MY_DB_PORT_5432_TCP_PROTO"] == "tcp"
    assert env["MY_DB_PORT_5432_TCP"] == "tcp://127.0.0.1:5432"
    assert env["MY_DB_PORT_53_UDP"] == "udp://127.0.0.1:53"
    assert env["MY_DB_PORT"] == "udp://127.0.0.1:53"  # the lowest port, as docker did
    assert env["MY_DB_NAME"] == "/box/my-db"


def test_link_env_without_ports_names_the_container_only() -> None:
    assert link_env("web", []) == {"WEB_NAME": "/box/web"}


def test_exposed_ports_come_sorted_from_the_image_config() -> None:
    config: dict[str, Any] = {
        "ExposedPorts": {"8080/tcp": {}, "53/udp": {}, "bad/tcp": {}, "443": {}}
    }
    assert exposed_ports(config) == [(53, "udp"), (443, "tcp"), (8080, "tcp")]
    assert exposed_ports({"ExposedPorts": None}) == []


def test_default_service_name_is_the_last_part_of_the_repository() -> None:
    assert alias_of("library/mongo") == "mongo"
    assert alias_of("wercker/postgres") == "postgres"
    assert alias_of("redis") == "redis"
