"""The bubblewrap sandbox (``bot.runners.sandbox``): the command line ``Sandbox.launch``
builds, the file descriptors ``Launch`` hands over, ``find_sandbox``'s probe (against fake
``bwrap`` scripts on ``PATH``, and once against the real one) and ``check_expose``.

What a step can reach inside the real sandbox is ``tests/security/test_local_sandbox.py``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.runners import sandbox as sandbox_module
from bot.runners.sandbox import (
    SANDBOX_UID,
    Launch,
    Sandbox,
    check_expose,
    find_sandbox,
    forget_probes,
)


@pytest.fixture(autouse=True)
def _fresh_probes() -> Iterator[None]:
    """Probe answers are cached per process: each test starts and leaves without any."""
    forget_probes()
    yield
    forget_probes()


def _at(argv: list[str], *args: str) -> int:
    """Where ``args`` start in ``argv``, or -1."""
    n = len(args)
    return next((i for i in range(len(argv) - n + 1) if argv[i : i + n] == list(args)), -1)


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# -- Sandbox.launch ------------------------------------------------------------------------


def test_the_namespaces_and_the_nested_userns_lock(tmp_path: Path) -> None:
    for disable, expected in ((True, 1), (False, 0)):
        launch = Sandbox("bwrap", disable_userns=disable).launch(
            ["true"], writable=[tmp_path], chdir=str(tmp_path), home=str(tmp_path)
        )
        argv = launch.argv
        launch.close()
        assert argv[0] == "bwrap"
        assert _at(argv, "--unshare-user", "--uid", str(SANDBOX_UID), "--gid", "1000") == 1
        for flag in ("--unshare-pid", "--die-with-parent", "--new-session"):
            assert flag in argv
        assert _at(argv, "--cap-drop", "ALL") > 0
        assert argv.count("--disable-userns") == expected


def test_passwd_and_group_are_written_for_the_sandbox_through_passed_pipes(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    sandbox = Sandbox("bwrap")
    launch = sandbox.launch(["true"], writable=[tmp_path], chdir=str(tmp_path), home=str(home))
    try:
        files = {}
        for i, arg in enumerate(launch.argv):
            if arg == "--ro-bind-data":
                fd = int(launch.argv[i + 1])
                assert fd in launch.pass_fds
                files[launch.argv[i + 2]] = os.read(fd, 65536).decode()
        assert set(files) == {"/etc/passwd", "/etc/group"}
        assert f"wercker:x:1000:1000:wercker step:{home}:{sandbox.shell}\n" in files["/etc/passwd"]
        assert "wercker:x:1000:\n" in files["/etc/group"]
    finally:
        launch.close()


def test_writable_dirs_are_bound_parents_first_once_and_the_command_comes_last(
    tmp_path: Path,
) -> None:
    inner, deeper = tmp_path / "a", tmp_path / "a" / "b"
    exposed = ("/opt/tools", "/srv/shared")
    launch = Sandbox("bwrap", expose=exposed).launch(
        ["sh", "-c", "echo $SECRET"],
        writable=[deeper, str(tmp_path), inner, tmp_path],
        chdir=str(inner),
        home=str(tmp_path),
    )
    argv = launch.argv
    launch.close()
    binds = [argv[i + 1] for i, a in enumerate(argv) if a == "--bind"]
    assert binds == [str(tmp_path), str(inner), str(deeper)]
    for path in exposed:
        assert _at(argv, "--ro-bind-try", path, path) > 0
    status = argv[argv.index("--json-status-fd") + 1]
    assert argv[-10:] == [
        "--remount-ro", "/", "--chdir", str(inner), "--json-status-fd", status,
        "--", "sh", "-c", "echo $SECRET",
    ]  # fmt: skip
    assert int(status) in launch.pass_fds


def test_hidden_paths_are_covered_after_the_read_only_binds_and_before_the_step_dirs(
    tmp_path: Path,
) -> None:
    shown = tmp_path / "shown"
    data = shown / "data"
    ws = data / "work" / "ws"
    ws.mkdir(parents=True)
    (data / "store").write_text("s")  # inside a hidden directory: nothing more to do
    key = shown / "key"
    key.write_text("k")
    alias = tmp_path / "key-link"  # hidden by a link to it: covered where the file is shown
    alias.symlink_to(key)
    elsewhere = tmp_path / "elsewhere"  # not shown at all: left alone
    elsewhere.mkdir()
    hide = (data, alias, data / "store", elsewhere, tmp_path / "missing")
    sandbox = Sandbox("bwrap", expose=(str(shown),), hide=tuple(str(p) for p in hide))
    launch = sandbox.launch(["true"], writable=[ws], chdir=str(ws), home=str(ws))
    argv = launch.argv
    launch.close()
    shown_at = _at(argv, "--ro-bind-try", str(shown), str(shown))
    emptied = _at(argv, "--tmpfs", str(data))
    nulled = _at(argv, "--ro-bind", "/dev/null", str(key))
    step = _at(argv, "--bind", str(ws), str(ws))
    read_only = _at(argv, "--remount-ro", str(data))
    assert 0 <= _at(argv, "--ro-bind", "/usr", "/usr") < shown_at < min(emptied, nulled)
    assert max(emptied, nulled) < step < read_only < _at(argv, "--remount-ro", "/")
    for path in (data / "store", elsewhere, tmp_path / "missing", alias):
        assert str(path) not in argv


def test_a_launch_that_fails_to_build_leaves_no_fd_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(shown: object, hide: object) -> tuple[list[str], list[str]]:
        raise RuntimeError("boom")

    monkeypatch.setattr(sandbox_module, "hiding_binds", broken)
    before = open_fds()
    with pytest.raises(RuntimeError, match="boom"):
        Sandbox("bwrap").launch(["true"], writable=[tmp_path], chdir="/", home="/")
    assert open_fds() == before


# -- Launch --------------------------------------------------------------------------------


def test_ran_reads_bwraps_status_once_the_parent_let_go_of_the_write_end() -> None:
    launch = Launch()
    assert launch.ran() is False  # no status pipe at all
    write = launch.status_fd()
    assert write in launch.pass_fds and launch.ran() is False  # nothing written yet
    os.write(write, b'{ "child-pid": 7 }\n{ "exit-code": 3 }\n')
    launch.started()
    assert not is_open(write) and launch.ran() is True
    launch.close()


def test_a_sandbox_that_never_started_the_command_did_not_run() -> None:
    launch = Launch()
    write = launch.status_fd()
    os.write(write, b'{ "child-pid": 7 }\n')
    launch.started()
    assert launch.ran() is False
    launch.close()


def test_started_and_close_release_every_fd_the_launch_opened() -> None:
    before = open_fds()
    launch = Launch()
    data = launch.data_fd("root:x:0:\n")
    launch.status_fd()
    assert os.read(data, 100) == b"root:x:0:\n"
    launch.started()
    assert not any(is_open(fd) for fd in launch.pass_fds)
    launch.close()
    launch.close()  # twice is harmless
    assert open_fds() == before


# -- find_sandbox --------------------------------------------------------------------------


def fake_bwrap(directory: Path, body: str) -> Path:
    """A ``bwrap`` on a ``PATH`` of its own that logs each call and answers ``--version``."""
    directory.mkdir()
    bwrap = directory / "bwrap"
    bwrap.write_text(
        "#!/bin/sh\n"
        f'echo "$1" >> {directory}/calls\n'
        'if [ "$1" = "--version" ]; then echo "bubblewrap 0.4.1"; exit 0; fi\n' + body
    )
    bwrap.chmod(0o755)
    return bwrap


def calls(bwrap: Path) -> int:
    log = bwrap.parent / "calls"
    return len(log.read_text().splitlines()) if log.exists() else 0


def test_no_bwrap_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_sandbox() == (None, "bwrap was not found on PATH")


def test_an_old_bwrap_runs_without_the_userns_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bwrap = fake_bwrap(
        tmp_path / "bin",
        'case " $* " in *" --disable-userns "*)\n'
        '  echo "bwrap: Unknown option --disable-userns" >&2; exit 1;;\nesac\nexit 0\n',
    )
    monkeypatch.setenv("PATH", str(bwrap.parent))
    sandbox, why = find_sandbox(["/opt"], ["/secret"])
    assert sandbox == Sandbox(str(bwrap), ("/opt",), disable_userns=False, hide=("/secret",))
    assert why == f"bubblewrap 0.4.1 at {bwrap}"


def test_the_probe_runs_once_per_set_of_paths_until_forgotten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bwrap = fake_bwrap(tmp_path / "bin", "exit 0\n")
    monkeypatch.setenv("PATH", str(bwrap.parent))
    first = find_sandbox()
    assert first[0] == Sandbox(str(bwrap)) and calls(bwrap) == 2  # --version, then a step
    assert find_sandbox() is first and calls(bwrap) == 2
    find_sandbox(["/opt"])
    assert calls(bwrap) == 4
    forget_probes()
    assert find_sandbox() == first and calls(bwrap) == 6


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ('echo "bwrap: setting up uid map: Permission denied" >&2\nexit 1\n',
         "bwrap: setting up uid map: Permission denied"),
        ("exit 3\n", "exit 3"),
    ],
)  # fmt: skip
def test_a_bwrap_that_cannot_make_a_sandbox_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, reason: str
) -> None:
    bwrap = fake_bwrap(tmp_path / "bin", body)
    monkeypatch.setenv("PATH", str(bwrap.parent))
    assert find_sandbox() == (
        None,
        f"bubblewrap 0.4.1 at {bwrap} cannot make a sandbox here: {reason}",
    )


def test_a_hanging_bwrap_is_given_up_on(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bwrap = fake_bwrap(tmp_path / "bin", "exec sleep 30\n")
    monkeypatch.setenv("PATH", str(bwrap.parent))
    monkeypatch.setattr(sandbox_module, "PROBE_TIMEOUT", 0.5)
    sandbox, why = find_sandbox()
    assert sandbox is None and why.endswith(
        "cannot make a sandbox here: it did not finish within 0 s"
    )


def test_the_real_bwrap_runs_a_step_as_the_sandbox_user(tmp_path: Path) -> None:
    sandbox, why = find_sandbox()
    assert sandbox is not None, f"bubblewrap is needed for these tests: {why}"
    assert why.startswith("bubblewrap ")
    for chdir, ran in ((tmp_path, True), (tmp_path / "missing", False)):
        launch = sandbox.launch(
            ["/bin/sh", "-c", 'id -u; echo "$GIVEN"'],
            writable=[tmp_path], chdir=str(chdir), home=str(tmp_path),
        )  # fmt: skip
        try:
            proc = subprocess.Popen(
                launch.argv, pass_fds=launch.pass_fds, env={"GIVEN": "from-env"},
                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            launch.started()
            out, _ = proc.communicate(timeout=30)
            assert launch.ran() is ran
        finally:
            launch.close()
        if ran:
            assert proc.returncode == 0 and out == b"1000\nfrom-env\n"
        else:
            assert proc.returncode != 0 and out == b""


# -- check_expose --------------------------------------------------------------------------


def layout(tmp_path: Path) -> tuple[Path, Path, Path]:
    data = tmp_path / "var" / "data"
    (data / "cache").mkdir(parents=True)
    config = tmp_path / "etc" / "bot.toml"
    config.parent.mkdir()
    config.write_text("")
    home = tmp_path / "home"
    (home / "tools").mkdir(parents=True)
    return data, config, home


@pytest.mark.parametrize(
    ("shown", "clash"),
    [
        ("var/data", "var/data"),
        ("var", "var/data"),
        (".", "var/data"),
        ("var/data/cache", "var/data"),
        ("etc/bot.toml", "etc/bot.toml"),
        ("etc", "etc/bot.toml"),
        ("home", "home"),
    ],
)
def test_exposing_what_only_the_bot_may_read_is_refused(
    tmp_path: Path, shown: str, clash: str
) -> None:
    data, config, home = layout(tmp_path)
    raw = str(tmp_path / shown)
    with pytest.raises(ConfigError) as err:
        check_expose(["/usr/share", raw], data, [config, home])
    assert err.value.key == "runner.sandbox_expose"
    assert str(err.value) == (
        f"config runner.sandbox_expose: {raw} would show sandboxed steps "
        f"{os.path.realpath(tmp_path / clash)}, which only the bot may read"
    )


def test_a_link_to_the_data_dir_is_refused_too(tmp_path: Path) -> None:
    data, config, home = layout(tmp_path)
    link = tmp_path / "innocent"
    link.symlink_to(data / "cache")
    with pytest.raises(ConfigError, match="innocent would show sandboxed steps"):
        check_expose([str(link)], data, [config, home])


def test_neighbours_and_a_dir_inside_a_private_one_may_be_exposed(tmp_path: Path) -> None:
    """A tool directory in the bot's home is shown again inside the hidden home."""
    data, config, home = layout(tmp_path)
    neighbour = tmp_path / "var" / "data-tools"  # shares a prefix with the data_dir
    neighbour.mkdir()
    check_expose(
        [str(neighbour), str(home / "tools"), "/usr/share", "/missing"], data, [config, home]
    )
