"""The PostgreSQL harness itself (``tests/harness/postgres.py``): a test session killed
with SIGKILL leaves no server and no data dir behind, and a machine without PostgreSQL
skips its tests, except under CI, where that is a failure."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.harness import postgres as harness

SESSION = """
import time
from tests.harness.postgres import start_postgres
server, watchdog = start_postgres()
print(server.pid(), server.root, flush=True)
time.sleep(120)
"""


def test_a_session_killed_with_sigkill_leaves_no_server_behind() -> None:
    harness.require_postgres()
    session = subprocess.Popen(
        [sys.executable, "-c", SESSION], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert session.stdout is not None
    pid_text, root_text = session.stdout.readline().split()
    pid, root = int(pid_text), Path(root_text)
    assert harness.alive(pid) and (root / "data" / "postmaster.pid").exists()
    session.kill()  # no teardown runs: only the watchdog is left to clean up
    session.wait()
    session.stdout.close()
    deadline = time.monotonic() + 20
    while (harness.alive(pid) or root.exists()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not harness.alive(pid), "the server outlived its session"
    assert not root.exists(), "the data dir outlived its session"


@pytest.mark.parametrize("ci", ["", "true"])
def test_without_postgresql_tests_skip_but_fail_under_ci(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ci: str
) -> None:
    monkeypatch.setattr(harness, "PG_ROOT", tmp_path / "no-postgresql")
    if ci:
        monkeypatch.setenv("CI", ci)
    else:
        monkeypatch.delenv("CI", raising=False)
    expected = pytest.fail.Exception if ci else pytest.skip.Exception
    with pytest.raises(expected) as caught:
        harness.require_postgres()
    assert "PostgreSQL is not installed" in str(caught.value)
    assert ("CI must run the PostgreSQL tests" in str(caught.value)) == bool(ci)
    assert os.environ.get("CI", "") == ci
