"""``bot.stepsources`` (its ``__init__``): step ids as Wercker read them, the built-in
library's look-up and the log line of a resolved package."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.stepsources import StepId, StepPackage, built_in_dir, is_built_in, parse_step_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("npm-install", StepId("wercker", "npm-install")),
        ("wercker/npm-install", StepId("wercker", "npm-install")),
        ("Owner/Name@1.2.3", StepId("owner", "name", "1.2.3")),
        ("ps/pretty-slack-notify@0.3.6", StepId("ps", "pretty-slack-notify", "0.3.6")),
        ("npm test", None),
        ("a/b/c", None),
        ("owner/name@", None),
        ("", None),
    ],
)  # fmt: skip
def test_step_ids_are_normalised_as_wercker_did(text: str, expected: StepId | None) -> None:
    assert parse_step_id(text) == expected


def test_a_step_id_shows_its_version_only_when_one_was_asked() -> None:
    assert (StepId("acme", "x").key, str(StepId("acme", "x"))) == ("acme/x", "acme/x")
    assert str(StepId("acme", "x", "1.2.3")) == "acme/x@1.2.3"


def test_built_in_dir_serves_wercker_names_and_the_any_owner_aliases(tmp_path: Path) -> None:
    (tmp_path / "npm-install").mkdir()
    (tmp_path / "slack-notifier").mkdir()
    assert built_in_dir(StepId("wercker", "npm-install"), tmp_path) == tmp_path / "npm-install"
    assert built_in_dir(StepId("acme", "npm-install"), tmp_path) is None  # another owner's
    assert built_in_dir(StepId("wercker", "missing"), tmp_path) is None
    served = built_in_dir(StepId("acme", "pretty-slack-notify", "0.3.6"), tmp_path)
    assert served == tmp_path / "slack-notifier"


@pytest.mark.parametrize(
    ("text", "served"),
    [
        ("Wercker/S3Sync", True),  # ids are matched case-insensitively
        ("wercker/npm-install@1.0.0", True),
        ("acme/npm-install", False),
        ("wantedly/pretty-slack-notify", True),
        ("npm test", False),
    ],
)
def test_is_built_in_asks_the_shipped_library(text: str, served: bool) -> None:
    assert is_built_in(text) is served


def test_describe_is_one_log_line_naming_version_origin_and_commit() -> None:
    origin = "git https://g/x main"
    git = StepPackage(StepId("acme", "x", "^1"), Path("/c"), origin, "f" * 40, "1.2.0")
    assert git.describe() == f"acme/x version 1.2.0 from git https://g/x main at {'f' * 40}"
    local = StepPackage(StepId("wercker", "y"), Path("/l"), "path /l", None, "")
    assert local.describe() == "wercker/y from path /l"
