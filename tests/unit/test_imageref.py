"""``bot.imageref``: the image reference grammar alone (tags, repository paths, splitting a
reference), with no registry settings."""

from __future__ import annotations

import re

import pytest

from bot.errors import StepConfigError
from bot.imageref import (
    DOCKER_HUB,
    ImageName,
    check_repository,
    looks_like_host,
    sanitize_tag,
    split_image_ref,
    without_reference,
)


@pytest.mark.parametrize(
    ("tag", "want"),
    [
        ("feature/login", "feature-login"),
        ("refs/heads/releases/v1", "refs-heads-releases-v1"),
        ("a//b??c", "a-b-c"),
        (".hidden", "hidden"),
        ("--x", "x"),
        ("-.-", "latest"),
        ("", "latest"),
        ("/", "latest"),
        ("ünïcode", "n-code"),
        ("V1.2_rc-3", "V1.2_rc-3"),
        ("x" * 200, "x" * 128),
    ],
)
def test_sanitize_tag(tag: str, want: str) -> None:
    assert sanitize_tag(tag) == want


def test_sanitized_tags_are_valid_docker_tags() -> None:
    grammar = re.compile(r"^[\w][\w.-]{0,127}$", re.ASCII)
    for raw in ["a/b", "../x", "-", "é" * 300, "x y z", "...", "_ok"]:
        assert grammar.match(sanitize_tag(raw)), raw


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("busybox", ImageName(DOCKER_HUB, "library/busybox", "latest", "https")),
        ("index.docker.io/user/app:v1", ImageName(DOCKER_HUB, "user/app", "v1", "https")),
        # the grammar alone leaves the scheme of another host to the registry settings
        ("quay.io/x/y", ImageName("quay.io", "x/y", "latest", None)),
        ("HTTP://Reg.Lan:5000/a/b:c", ImageName("reg.lan:5000", "a/b", "c", "http")),
        ("host:5000/app", ImageName("host:5000", "app", "latest", None)),
        ("localhost/app", ImageName("localhost", "app", "latest", None)),
        # a first component without a dot or port is part of the name
        ("team/app:1.0", ImageName(DOCKER_HUB, "team/app", "1.0", "https")),
        ("q.io/a@sha256:" + "c" * 64, ImageName("q.io", "a", "sha256:" + "c" * 64, None)),
        (" q.io/a:t@sha256:" + "c" * 64, ImageName("q.io", "a", "sha256:" + "c" * 64, None)),
    ],
)
def test_split_image_ref(text: str, name: ImageName) -> None:
    assert split_image_ref(text) == name


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "the image reference is empty"),
        ("https://", "the image reference is empty"),
        ("x/y@sha256:zz", "'sha256:zz' is not a sha256 digest"),
        ("x/y:", "'' is not a valid tag"),
        ("x/y:-bad", "'-bad' is not a valid tag"),
        ("quay.io/Acme/app", "repository names must be lower-case"),
        ("quay.io/a//b", "'' is not a valid repository path component"),
        ("quay.io/-a", "'-a' is not a valid repository path component"),
    ],
)
def test_malformed_references_say_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(StepConfigError) as caught:
        split_image_ref(text)
    assert says in str(caught.value)


@pytest.mark.parametrize(
    ("image", "name"),
    [
        ("host:5000/a/b:1.0", "host:5000/a/b"),
        ("a/b@sha256:" + "1" * 64, "a/b"),
        ("host:5000/app", "host:5000/app"),
        (" busybox:1.36 ", "busybox"),
    ],
)
def test_without_reference_keeps_the_name_and_the_port(image: str, name: str) -> None:
    assert without_reference(image) == name


@pytest.mark.parametrize(
    ("component", "host"),
    [("quay.io", True), ("reg:5000", True), ("localhost", True), ("team", False), ("", False)],
)
def test_looks_like_host(component: str, host: bool) -> None:
    assert looks_like_host(component) is host


@pytest.mark.parametrize(
    "repository", ["a", "acme/app", "a.b/c_d/e__f/g--h", "x" * 100 + "/" + "y" * 154]
)
def test_valid_repositories_pass(repository: str) -> None:
    check_repository(repository, "repository")


@pytest.mark.parametrize(
    ("repository", "says"),
    [
        ("", "repository 'x': the repository is empty"),
        ("a/B", "repository 'x': 'B' is not a valid repository path component"),
        ("a_/b", "repository 'x': 'a_' is not a valid"),
        ("a___b", "repository 'x': 'a___b' is not a valid"),
        ("x" * 128 + "/" + "y" * 127, "repository 'x': the repository name is longer than 255"),
    ],
)
def test_invalid_repositories_are_errors_prefixed_with_where(repository: str, says: str) -> None:
    with pytest.raises(StepConfigError) as caught:
        check_repository(repository, "repository 'x'")
    assert str(caught.value).startswith(says)
