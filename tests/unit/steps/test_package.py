"""Running a step package (``steps/package.py``) on the local runner, sandboxed and not:
Wercker's option variables and export quoting, the report files, the helpers, and
staging (the copying itself: tests/unit/runners/test_staging.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import StepError
from bot.logs import MemoryLog
from bot.runners.base import Timeouts, Workspace
from bot.runners.local import LocalRunner, LocalSession
from bot.runners.sandbox import find_sandbox
from bot.stepsources import Property, StepId, StepPackage
from bot.wercker.model import Loc, StepSpec
from steps.base import BuildFacts, StepContext, StepOutcome
from steps.package import PackageStep, _quote, env_name

FACTS = BuildFacts("acme/app", "main", "", "0" * 40, "", "1-1", "", "")


@pytest.fixture(params=["sandboxed", "unsafe"])
def session(tmp_path: Path, request: pytest.FixtureRequest) -> LocalSession:
    sandbox = None
    if request.param == "sandboxed":
        sandbox, why = find_sandbox()
        assert sandbox is not None, f"bubblewrap is needed for these tests: {why}"
    ws = Workspace.create(tmp_path / "ws", tmp_path / "cache")
    return LocalRunner(sandbox).open(None, {}, ws, None, MemoryLog())


def package(
    tmp_path: Path, run_sh: str, *props: Property, extra: dict | None = None
) -> StepPackage:
    directory = tmp_path / "pkg"
    directory.mkdir(parents=True)
    (directory / "run.sh").write_text(run_sh)
    for name, text in (extra or {}).items():
        (directory / name).parent.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)
    return StepPackage(StepId("acme", "my-step"), directory, "test", None, "1.0.0", tuple(props))


def run(
    session: LocalSession, pkg: StepPackage, options: dict[str, str], env: dict | None = None
) -> tuple[StepOutcome, str]:
    log = MemoryLog()
    ctx = StepContext(
        step=StepSpec("acme/my-step", Loc("wercker.yml", 1, 1), "my step", dict(options)),
        session=session,
        env={"WERCKER_SOURCE_DIR": session.paths.source, **(env or {})},
        secrets={"TOKEN": "tok-123"},
        lookup={},
        facts=FACTS,
        log=log,
        timeouts=Timeouts(30, 30),
        pusher=None,  # type: ignore[arg-type]  # a package step never pushes
        engine_pusher=None,  # type: ignore[arg-type]
        package=pkg,
    )
    return PackageStep().run(ctx), log.text


def test_env_names_follow_wercker() -> None:
    assert (
        env_name("pretty-slack-notify", "webhook_url") == "WERCKER_PRETTY_SLACK_NOTIFY_WEBHOOK_URL"
    )
    assert env_name("add-to-known_hosts", "use-md5") == "WERCKER_ADD_TO_KNOWN_HOSTS_USE_MD5"


def test_quoting_is_gos_percent_q() -> None:
    assert _quote('a"b\\c`d$e\nf\tg\x01') == 'a\\"b\\\\c\\`d$e\\nf\\tg\\x01'


def test_options_defaults_booleans_and_step_vars(session: LocalSession, tmp_path: Path) -> None:
    pkg = package(
        tmp_path,
        'echo "a=$WERCKER_MY_STEP_A b=$WERCKER_MY_STEP_B"\n'
        'echo "c=$WERCKER_MY_STEP_C d=$WERCKER_MY_STEP_D"\n'
        'echo "name=$WERCKER_STEP_NAME owner=$WERCKER_STEP_OWNER"\n'
        'echo "root=$(cat "$WERCKER_STEP_ROOT/data.txt")"\n'
        '[ -d "$WERCKER_STEP_TEMP" ] && echo "temp ok"\n'
        '[ -d "$WERCKER_REPORT_ARTIFACTS_DIR" ] && echo "artifacts ok"\n'
        "setMessage 'all good'\n",
        Property("a", "default-a"), Property("b", "true"), Property("c", ""),
        extra={"data.txt": "from the package"},
    )  # fmt: skip
    outcome, log = run(session, pkg, {"c": "on", "d": "free"})
    assert "a=default-a b=true\nc=true d=free" in log
    assert "name=my-step owner=acme" in log and "root=from the package" in log
    assert "temp ok" in log and "artifacts ok" in log
    assert outcome.message == "all good"


def test_option_text_is_exported_as_wercker_did(session: LocalSession, tmp_path: Path) -> None:
    pkg = package(tmp_path, 'printf "%s|" "$WERCKER_MY_STEP_X" "$WERCKER_MY_STEP_Y"; echo\n')
    marker = tmp_path / "ws" / "source" / "pwned"
    _, log = run(
        session, pkg, {"x": 'say "hi" $WHO\nnext', "y": "`touch pwned` $TOKEN"}, {"WHO": "you"}
    )
    assert 'say "hi" you\\nnext|`touch pwned` tok-123|' in log
    assert not marker.exists()


def test_exports_reach_the_env_sync_but_per_step_values_do_not(
    session: LocalSession, tmp_path: Path
) -> None:
    pkg = package(tmp_path, "export FROM_STEP=1\n", Property("p", "x"))
    outcome, _ = run(session, pkg, {})
    assert outcome.env["FROM_STEP"] == "1"
    assert outcome.env["WERCKER_MY_STEP_P"] == "x"  # Wercker never unset them
    assert not [k for k in outcome.env if k.startswith(("WB_", "WERCKER_REPORT_", "WERCKER_STEP_"))]


def test_fail_ends_the_step_with_its_message(session: LocalSession, tmp_path: Path) -> None:
    pkg = package(tmp_path, 'echo before\nfail "it broke"\necho after\n')
    with pytest.raises(StepError) as err:
        run(session, pkg, {})
    assert str(err.value) == "it broke"


def test_no_set_e_and_the_last_status_counts(session: LocalSession, tmp_path: Path) -> None:
    outcome, log = run(session, package(tmp_path, "false\necho still here\n"), {})
    assert "still here" in log and outcome.exit_code == 0
    with pytest.raises(StepError, match=r"failed \(exit 3\)"):
        run(session, package(tmp_path / "2", "(exit 3)\n"), {})
