"""``bot.stepsources.config``: the ``[steps]`` table of the bot's config, read alone and
through ``parse_settings``."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import parse_settings
from bot.stepsources.config import parse_steps


def test_steps_table_parses_git_and_path_sources(tmp_path: Path) -> None:
    got = parse_steps(
        {
            "acme/greet@^1.2": {"git": "https://u:pw@git.example/greet.git", "ref": "v1"},
            "npm-install": {"path": "steps/npm"},
        },
        tmp_path,
    )
    assert (got[0].id, got[0].versions, got[0].ref, got[0].password) == (
        "acme/greet",
        "^1.2",
        "v1",
        "pw",
    )
    assert (got[1].id, got[1].path, got[1].ref) == (
        "wercker/npm-install",
        tmp_path / "steps/npm",
        "HEAD",
    )


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ({"npm test": {"path": "/x"}}, "steps.'npm test'"),
        ({"a/b": "https://x"}, "steps.'a/b'"),
        ({"a/b": {"git": "https://x", "path": "/x"}}, "steps.'a/b'"),
        ({"a/b": {"gti": "https://x"}}, "steps.'a/b'.gti"),
        ({"a/b": {"path": "/x", "ref": "main"}}, "steps.'a/b'.ref"),
        ({"a/b@^x": {"path": "/x"}}, "steps.'a/b@^x'"),
    ],
)  # fmt: skip
def test_bad_steps_entries_name_their_key(table: dict, key: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"steps": table}, {}, base_dir=tmp_path)
    assert key in str(err.value)


def test_a_password_in_a_step_source_url_is_a_secret(tmp_path: Path) -> None:
    settings = parse_settings(
        {"steps": {"a/b": {"git": "https://u:hunter22@git.example/b.git"}}}, {}, base_dir=tmp_path
    )
    assert "hunter22" in settings.secret_values()
