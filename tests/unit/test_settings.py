from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.settings import PipelineChoice, load_settings, parse_settings

BASE = Path("/srv")


def test_env_references_are_expanded_and_defaults_apply() -> None:
    s = parse_settings(
        {
            "github": {"webhook_secret": "${SECRET}", "token": "${TOKEN}"},
            "repos": {"Acme/App": {"secrets": {"PASSWORD": "${PW}"}}},
        },
        {"SECRET": "s3cret-value", "TOKEN": "tok-123", "PW": "hunter22"},
        base_dir=BASE,
    )
    assert s.github.webhook_secret == "s3cret-value"
    assert s.data_dir == BASE / "var"
    repo = s.repos["acme/app"]
    assert repo.clone_url == "https://github.com/Acme/App.git"
    assert repo.pipelines == (PipelineChoice("build"), PipelineChoice("deploy"))
    assert repo.secrets == {"PASSWORD": "hunter22"}
    assert set(s.secret_values()) == {"s3cret-value", "tok-123", "hunter22"}


def test_unset_env_reference_names_variable_and_key() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"github": {"token": "${NOPE}"}}, {}, base_dir=BASE)
    assert "NOPE" in str(err.value) and "github.token" in str(err.value)


def test_pipeline_entries_with_branch_globs() -> None:
    s = parse_settings(
        {"repos": {"a/b": {"pipelines": ["build", {"name": "push", "branches": ["main"]}]}}},
        {},
        base_dir=BASE,
    )
    assert s.repos["a/b"].pipelines == (PipelineChoice("build"), PipelineChoice("push", ("main",)))


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"wrkers": 2}, "wrkers"),
        ({"runner": {"kind": "k8s"}}, "runner.kind"),
        ({"repos": {"noslash": {}}}, "repos"),
        ({"repos": {"a/b": {"pipelines": [3]}}}, "pipelines[0]"),
        ({"registries": {"r.io": {"insecur": True}}}, "insecur"),
    ],
)
def test_bad_config_names_the_key(raw: dict, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, {}, base_dir=BASE)
    assert key in str(err.value)


def test_load_settings_reports_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "none.toml", {})
    bad = tmp_path / "bad.toml"
    bad.write_text("data_dir = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_settings(bad, {})


def test_example_config_loads() -> None:
    example = Path(__file__).resolve().parents[2] / "config.example.toml"
    s = load_settings(example, {"GITHUB_WEBHOOK_SECRET": "x" * 10, "GITHUB_TOKEN": ""})
    assert s.runner_kind == "auto" and "owner/name" in s.repos


@pytest.mark.parametrize("value", ["false", "False", False])
def test_flags_from_the_environment_are_parsed_not_truthy(value: object) -> None:
    s = parse_settings(
        {"github": {"insecure_skip_signature": "${SKIP}"}}
        if value == "false"
        else {"github": {"insecure_skip_signature": value}},
        {"SKIP": "false"},
        base_dir=BASE,
    )
    assert s.github.insecure_skip_signature is False


@pytest.mark.parametrize("value", ["no", "0", "yes please", 1])
def test_ambiguous_flags_are_errors(value: object) -> None:
    with pytest.raises(ConfigError, match="true or false"):
        parse_settings({"registries": {"r.io": {"insecure": value}}}, {}, base_dir=BASE)


def test_bad_clone_url_template_and_unreadable_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="full_name"):
        parse_settings({"clone_url_template": "https://{host}/{full_name}"}, {}, base_dir=BASE)
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path, {})


def test_step_limits_are_read_and_checked() -> None:
    from bot.settings import StepLimits

    base = {"github": {"webhook_secret": "x"}}
    default = parse_settings(base, {}, base_dir=Path("/tmp"))
    assert default.step_limits == StepLimits(memory_mb=4096, max_file_mb=10240)
    raw = {**base, "runner": {"memory_mb": 512, "max_file_mb": 20}}
    assert parse_settings(raw, {}, base_dir=Path("/tmp")).step_limits == StepLimits(512, 20)
    with pytest.raises(ConfigError, match="megabytes ≥ 64") as err:
        parse_settings({**base, "runner": {"memory_mb": 8}}, {}, base_dir=Path("/tmp"))
    assert "runner.memory_mb" in str(err.value)
