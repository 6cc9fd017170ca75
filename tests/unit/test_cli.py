"""The command line through ``bot.cli.main``: ``check`` (text, JSON, directories) and where
the config is read. ``run`` is ``tests/unit/test_local_run.py``."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from bot.cli import EXIT_FAILED, main
from bot.settings import load_settings

CLEAN = """\
build:
  steps:
    - script:
        name: hello
        code: echo hello
"""
WITH_ERRORS = """\
build:
  steps:
    - npm test
    - internal/store-container
"""


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config from the developer's environment; ``var/`` lands in a temporary cwd."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("WERCKER_BOT_CONFIG", raising=False)


def project(tmp_path: Path, text: str, name: str = "wercker.yml") -> Path:
    directory = tmp_path / "project"
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(textwrap.dedent(text))
    return directory


# -- check ---------------------------------------------------------------------------------


def test_check_clean_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, CLEAN) / "wercker.yml"
    assert main(["check", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == f"{path}: 0 error(s), 0 warning(s)"


def test_check_file_with_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, WITH_ERRORS) / "wercker.yml"
    assert main(["check", str(path)]) == EXIT_FAILED
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert lines[0].startswith(f"{path}:3:7: error: step 'npm test' is not a step id"), out
    assert lines[1].startswith(f"{path}:4:7: error: internal/store-container is not supported"), out
    assert f"{path}: 2 error(s), 0 warning(s)" in err


def test_check_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = project(tmp_path, WITH_ERRORS) / "wercker.yml"
    assert main(["check", str(path), "--format", "json"]) == EXIT_FAILED
    document = json.loads(capsys.readouterr().out)
    assert document["file"] == str(path)
    problems = document["problems"]
    assert [(p["line"], p["col"], p["severity"]) for p in problems] == [
        (3, 7, "error"),
        (4, 7, "error"),
    ]
    assert all(p["file"] == str(path) and p["pipeline"] == "build" for p in problems)


def test_check_json_on_a_clean_file_is_an_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = project(tmp_path, CLEAN) / "wercker.yml"
    assert main(["check", str(path), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["problems"] == []


def test_check_dir_finds_dot_wercker_yml(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    directory = project(tmp_path, WITH_ERRORS, name=".wercker.yml")
    assert not (directory / "wercker.yml").exists()
    assert main(["check", str(directory)]) == EXIT_FAILED
    out, _ = capsys.readouterr()
    assert out.startswith(f"{directory / '.wercker.yml'}:3:7: error:"), out


def test_check_dir_prefers_wercker_yml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    directory = project(tmp_path, WITH_ERRORS, name=".wercker.yml")
    (directory / "wercker.yml").write_text(CLEAN)
    assert main(["check", str(directory)]) == 0
    assert f"{directory / 'wercker.yml'}: 0 error(s)" in capsys.readouterr().err


def test_check_dir_without_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path)]) == EXIT_FAILED
    assert "no wercker.yml or .wercker.yml" in capsys.readouterr().err


# -- settings ------------------------------------------------------------------------------


def test_load_settings_reads_wercker_bot_config(tmp_path: Path) -> None:
    path = tmp_path / "bot.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            data_dir = "{tmp_path / "data"}"
            workers = 5
            [github]
            token = "${{GH_TOKEN}}"
            [runner]
            kind = "local"
            [repos."acme/app"]
            env = {{ GREETING = "hi" }}
            """
        )
    )
    settings = load_settings(None, {"WERCKER_BOT_CONFIG": str(path), "GH_TOKEN": "t0ken"})
    assert settings.config_path == path
    assert settings.data_dir == tmp_path / "data"
    assert settings.workers == 5 and settings.runner_kind == "local"
    assert settings.github.token == "t0ken"  # ${NAME} is read from the env given
    assert settings.repos["acme/app"].env == {"GREETING": "hi"}


def test_load_settings_path_argument_wins_over_the_env(tmp_path: Path) -> None:
    chosen, other = tmp_path / "chosen.toml", tmp_path / "other.toml"
    chosen.write_text("workers = 3\n")
    other.write_text("workers = 7\n")
    settings = load_settings(chosen, {"WERCKER_BOT_CONFIG": str(other)})
    assert settings.workers == 3


def test_check_warns_of_registry_steps_the_library_does_not_serve(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Built-in steps (and pretty-slack-notify of any owner) pass; another registry step
    is a warning naming the config key, not an error: the bot's config may serve it."""
    path = tmp_path / "wercker.yml"
    path.write_text(
        "build:\n  steps:\n    - npm-install\n    - wercker/npm-test\n"
        "    - acme/pretty-slack-notify@0.3.6\n    - acme/deploy-thing@1.2\n"
    )
    assert main(["check", str(path)]) == 0
    captured = capsys.readouterr()
    assert f"{path}:6:7: warning: step 'acme/deploy-thing@1.2'" in captured.out
    assert '[steps] "acme/deploy-thing"' in captured.out
    assert "npm-install" not in captured.out and "pretty-slack" not in captured.out
    assert "0 error(s), 1 warning(s)" in captured.err
