"""The script-step wrapper (``bot.runners.wrapper``): the argv it builds, Wercker's ``set -e``
rule, what a step leaves behind as parsed back, and the wrapper itself run by a real shell
on this host (no sandbox: what is tested is the shell text, not the runner)."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.errors import StepConfigError
from bot.runners.wrapper import (
    HELPER_VARS,
    MAX_CODE_BYTES,
    MAX_MESSAGE_CHARS,
    WRAPPER,
    command,
    parse_env_dump,
    parse_message,
    wants_set_e,
)

# -- command -------------------------------------------------------------------------------


def test_the_code_travels_as_an_argument_after_the_wrapper() -> None:
    code = 'echo "$(id)"; rm -rf "$HOME"'
    assert command("/bin/sh", code) == ["/bin/sh", "-c", WRAPPER, "wercker-step", code]


def test_code_at_the_limit_passes_and_one_byte_more_is_refused_with_advice() -> None:
    assert command("/bin/sh", "x" * MAX_CODE_BYTES)[-1] == "x" * MAX_CODE_BYTES
    with pytest.raises(StepConfigError) as err:
        command("/bin/sh", "x" * (MAX_CODE_BYTES + 1))
    assert str(err.value) == (
        "the step's code is 100 KiB; the limit is 100 KiB: "
        "move it into a script file in the repository and run that"
    )


def test_the_limit_counts_utf8_bytes_not_characters() -> None:
    code = "é" * (MAX_CODE_BYTES // 2 + 1)  # fewer characters than the limit, more bytes
    assert len(code) < MAX_CODE_BYTES
    with pytest.raises(StepConfigError, match="limit is 100 KiB"):
        command("/bin/sh", code)


# -- wants_set_e ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("make test", True),
        ("", True),
        ("echo '#!/bin/bash'", True),
        ("#!/bin/bash\nfalse", False),
        ("\n  \t#!/usr/bin/env sh\nfalse", False),
    ],
)
def test_set_e_unless_the_code_starts_with_a_shebang(code: str, expected: bool) -> None:
    assert wants_set_e(code) is expected


# -- what a step leaves behind -------------------------------------------------------------


def test_env_dump_drops_the_wrappers_variables_and_shell_functions() -> None:
    helpers = b"".join(f"{name}=/x\0".encode() for name in HELPER_VARS)
    data = (
        b"PATH=/usr/bin\0" + helpers + b"BASH_FUNC_f%%=() {  echo\n}\0"
        b"URL=a=b=c\0EMPTY=\0\0no-equals-sign\0MULTI=line1\nline2\0BAD=\xff\xfe"
    )
    assert parse_env_dump(data) == {
        "PATH": "/usr/bin",
        "URL": "a=b=c",
        "EMPTY": "",
        "MULTI": "line1\nline2",
        "BAD": "\ufffd\ufffd",
    }


def test_env_dump_of_nothing_is_empty() -> None:
    assert parse_env_dump(b"") == {}


def test_message_is_stripped_and_cut_at_the_limit() -> None:
    assert parse_message(b"  tests are red \n") == "tests are red"
    assert parse_message(b"\xffx") == "\ufffdx"
    exact = "m" * MAX_MESSAGE_CHARS
    assert parse_message(exact.encode()) == exact
    long = parse_message(("m" * (MAX_MESSAGE_CHARS + 10)).encode())
    assert long == exact + "…"


# -- the wrapper in a real shell -----------------------------------------------------------


@dataclass
class Ran:
    code: int
    out: str
    err: str
    env: dict[str, str]
    message: str


def run_wrapped(tmp_path: Path, code: str, *, cwd: Path | None = None, **env: str) -> Ran:
    """Runs ``code`` through the wrapper in bash as a runner would, helpers in ``tmp_path``."""
    helpers = tmp_path / "helpers"
    helpers.mkdir(exist_ok=True)
    dump, message = helpers / "env", helpers / "message"
    wb = {
        "WB_ENV_DUMP": str(dump),
        "WB_MESSAGE_FILE": str(message),
        "WB_CWD": str(cwd or tmp_path),
        "WB_SET_E": "1" if wants_set_e(code) else "0",
        "WB_SCRIPT": str(helpers / "script"),
    }
    proc = subprocess.run(
        command("/bin/bash", code),
        env={"PATH": "/usr/bin:/bin", **wb, **env},
        capture_output=True,
        text=True,
        timeout=10,
    )
    return Ran(
        proc.returncode,
        proc.stdout,
        proc.stderr,
        parse_env_dump(dump.read_bytes()) if dump.exists() else {},
        parse_message(message.read_bytes()) if message.exists() else "",
    )


def test_exports_survive_into_the_env_dump(tmp_path: Path) -> None:
    ran = run_wrapped(tmp_path, "export BUILT=yes\nLOCAL_ONLY=1\necho ok", GIVEN="g")
    assert ran.code == 0 and ran.out == "ok\n"
    assert ran.env["BUILT"] == "yes" and ran.env["GIVEN"] == "g"
    assert "LOCAL_ONLY" not in ran.env and not set(HELPER_VARS) & set(ran.env)


def test_set_e_stops_at_the_first_failure_and_a_shebang_does_not(tmp_path: Path) -> None:
    stopped = run_wrapped(tmp_path, "false\necho not-reached")
    assert stopped.code == 1 and "not-reached" not in stopped.out
    kept_on = run_wrapped(tmp_path, "#!/bin/bash\nfalse\necho reached")
    assert kept_on.code == 0 and kept_on.out == "reached\n"


def test_the_env_is_dumped_even_when_the_step_fails(tmp_path: Path) -> None:
    ran = run_wrapped(tmp_path, "export BEFORE=1\nexit 4")
    assert ran.code == 4 and ran.env["BEFORE"] == "1"


def test_wercker_helpers(tmp_path: Path) -> None:
    ran = run_wrapped(tmp_path, 'success a b\ninfo i\nwarn w\ndebug d\nsetMessage "all good"')
    assert ran.out == "success: a b\ninfo: i\nwarning: w\ndebug: d\n"
    assert ran.code == 0 and ran.message == "all good"
    failed = run_wrapped(tmp_path, 'fail "tests are red"\necho not-reached')
    assert failed.code == 1 and failed.message == "tests are red"
    assert failed.out == "failed: tests are red\n"


def test_the_code_sees_no_arguments_and_is_never_shell_text_of_the_wrapper(
    tmp_path: Path,
) -> None:
    ran = run_wrapped(tmp_path, 'echo "args=$#"; echo "$WB_CWD"', WB_IGNORED="$(touch x)")
    assert ran.out == f"args=0\n{tmp_path}\n"
    assert not (tmp_path / "x").exists()


def test_the_step_starts_in_wb_cwd_or_says_why_not(tmp_path: Path) -> None:
    inner = tmp_path / "source"
    inner.mkdir()
    assert run_wrapped(tmp_path, "pwd", cwd=inner).out == f"{inner}\n"
    missing = tmp_path / "missing"
    ran = run_wrapped(tmp_path, "echo not-reached", cwd=missing)
    assert ran.code == 1 and "not-reached" not in ran.out
    assert f"cannot cd into {missing}" in ran.err


def test_a_script_path_it_cannot_write_stops_the_step(tmp_path: Path) -> None:
    blocker = tmp_path / "helpers" / "script"
    blocker.mkdir(parents=True)  # a directory where the script goes: rm -f leaves it
    ran = run_wrapped(tmp_path, "echo not-reached")
    assert ran.code == 1 and "cannot write the step script" in ran.err
    assert os.path.isdir(blocker)
