"""A hostile commit against the docker runner (issue 8, findings 1-3 and 7), on the real
private engine and the real registry.

Each test plays one escape that was reproduced on a running bot:

1. symlinks planted in the box's helper dir, for the bot to write step files through;
2. a message file and an env dump linked to a host key, for the bot to read and publish;
3. ``/pipeline/output`` replaced with a symlink to a host directory before a scratch push,
   and the hand-off to the next pipeline (also: links, hard links to links, device nodes
   and fifos in the output);
7. background processes (holding stdout, or in their own session) outliving their step.

The ``canary`` fixture is a host directory outside every workspace with a secret file;
nothing of it may change, leave the host, or appear in a result, a log or an image.
The archive tests at the end need no engine: they feed crafted tars to the extractor.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import stat
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
import requests

import tests.integration.docker.conftest as docker_fixtures
from bot.errors import StepError
from bot.images import ImageRef
from bot.logs import MemoryLog
from bot.models import Result
from bot.pipeline import PipelineRun, RunInputs, run_pipeline
from bot.plan import compile_file
from bot.pushers.credentials import RegistryCredentials
from bot.pushers.daemonless import DaemonlessPusher
from bot.pushers.engine import EnginePusher
from bot.pushers.model import PushResult
from bot.runners.base import Timeouts, Workspace
from bot.runners.docker import DockerRunner, DockerSession
from bot.runners.docker.archive import UnsafeArchiveError, extract_stream
from bot.settings import PipelineChoice, RepoSettings
from bot.wercker.model import StepSpec
from bot.wercker.parse import load_text
from steps.base import BuildFacts
from tests.harness.dockerd import Dockerd
from tests.integration.docker.conftest import Registry
from tests.security.conftest import Canary

# The docker runner's fixtures (private engine, registry, busybox box, workspace).
box_registry = docker_fixtures.box_registry
busybox_box = docker_fixtures.busybox_box
runner = docker_fixtures.runner
workspace = docker_fixtures.workspace

NO_LIMITS = Timeouts(command=60, no_response=None)
FACTS = BuildFacts(
    repo="acme/app",
    branch="main",
    git_tag="",
    commit="0123456789abcdef0123456789abcdef01234567",
    source_url="https://github.com/acme/app",
    run_id="run1",
    run_url="http://bot/runs/run1",
    created="2026-11-27T10:00:00Z",
)
# Where the bot used to keep its files for step N, and every name it used there.
OLD_HELPER_NAMES = ["wrapper.sh"] + [
    f"{kind}-{n}{ext}"
    for n in range(1, 8)
    for kind, ext in (("step", ".sh"), ("env", ""), ("message", ""))
]


def _run(session: DockerSession, code: str, log: MemoryLog, **env: str) -> Any:
    return session.run_script(
        code, env=dict(env), secrets={}, cwd=session.paths.source, timeouts=NO_LIMITS, log=log
    )


def _host_files_untouched(canary: Canary, before: set[str]) -> None:
    assert canary.intact()
    assert {p.name for p in canary.directory.iterdir()} == before


# -- 1: writes through planted links --------------------------------------------------------


@pytest.mark.docker
def test_links_planted_in_the_helper_dir_never_carry_a_write_to_the_host(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, canary: Canary
) -> None:
    before = {p.name for p in canary.directory.iterdir()}
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        plant = " ".join(
            f'ln -sf "$CANARY" "/pipeline/.wercker-bot/{name}";' for name in OLD_HELPER_NAMES
        )
        # Also over this step's own files, whatever they are called, and the dir itself.
        result = _run(
            session,
            f'{plant} for f in "$WB_SCRIPT" "$WB_ENV_DUMP" "$WB_MESSAGE_FILE"; do '
            'ln -sf "$CANARY" "$f"; done; ln -sf "$CANARY_DIR" /pipeline/.wercker-bot/dir',
            log,
            CANARY=str(canary.file),
            CANARY_DIR=str(canary.directory),
        )
        assert result.exit_code == 0, log.text
        ends: list[int | str] = []
        for code in (
            "echo second step",
            "export A=1",
            'setMessage "m"; exit 0',
            "exit 3",
            'fail "still failing"',
        ):
            try:
                ends.append(_run(session, code, log).exit_code)
            except StepError as err:
                ends.append(str(err))
        _host_files_untouched(canary, before)
        assert ends == [0, 0, 0, 3, "still failing"]
        # The bot's own helper dir on the host is not where anything goes any more.
        assert list(workspace.helper.iterdir()) == []
    finally:
        session.close()
    _host_files_untouched(canary, before)


# -- 2: reads through planted links ---------------------------------------------------------


@pytest.mark.docker
def test_a_message_or_env_dump_linked_to_a_host_key_is_never_read_on_the_host(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, canary: Canary
) -> None:
    # An env dump is NUL-separated NAME=value: a host file of that shape would be parsed.
    env_key = canary.directory / "env.key"
    env_key.write_bytes(f"STOLEN={canary.secret}\0".encode())
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        links = " ".join(
            f'ln -sf "$KEY" "/pipeline/.wercker-bot/message-{n}"; '
            f'ln -sf "$ENV_KEY" "/pipeline/.wercker-bot/env-{n}";'
            for n in range(1, 6)
        )
        _run(session, links, log, KEY=str(canary.file), ENV_KEY=str(env_key))
        # The step's own message file, linked, then a failure; or no message of its own
        # after the earlier step planted some. Either fails with no message, not the key.
        for code in ('ln -sf "$KEY" "$WB_MESSAGE_FILE"; exit 1', "exit 1"):
            try:
                failed = _run(session, code, log, KEY=str(canary.file))
            except StepError as err:
                assert canary.secret not in str(err)
                raise AssertionError(f"a message was read: {err}") from None
            assert failed.exit_code == 1
        # The env dump, linked: nothing of the host key becomes an export. (The wrapper's
        # dump at exit writes through the link inside the box, where that path does not
        # exist; a box that made it exist would only read its own file.)
        exported = _run(
            session, 'export MINE=1; ln -sf "$ENV_KEY" "$WB_ENV_DUMP"', log, ENV_KEY=str(env_key)
        )
        assert exported.exit_code == 0
        assert "STOLEN" not in exported.env
        assert canary.secret not in repr(exported.env)
    finally:
        session.close()
    assert canary.secret not in log.text
    assert canary.intact()


@pytest.mark.docker
def test_env_dump_and_message_are_read_only_up_to_the_cap(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace
) -> None:
    from bot.runners.wrapper import MAX_HELPER_BYTES, MAX_MESSAGE_CHARS

    over = MAX_HELPER_BYTES + 4096
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        # The step replaces the wrapper's exit trap with one that writes a huge "dump".
        result = _run(
            session,
            f'export A=1; trap \'head -c {over} /dev/zero | tr "\\0" x > "$WB_ENV_DUMP"\' EXIT',
            log,
        )
        assert result.exit_code == 0, log.text
        assert result.env == {}
        assert "its exports are not passed on" in log.text
        with pytest.raises(StepError) as failed:
            _run(
                session, f'head -c {over} /dev/zero | tr "\\0" y > "$WB_MESSAGE_FILE"; exit 1', log
            )
        assert str(failed.value) == "y" * MAX_MESSAGE_CHARS + "…"
        assert _run(session, "export B=2", log).env["B"] == "2"
    finally:
        session.close()


# -- 3: a symlinked output dir, and hard links to symlinks ----------------------------------


class _Tracer:
    def __init__(self) -> None:
        self.finished: list[tuple[str, Result, str]] = []

    def step_started(self, phase: str, position: int, step: StepSpec) -> object:
        return step.name

    def step_finished(
        self, token: object, state: Result, exit_code: int | None, message: str
    ) -> None:
        self.finished.append((str(token), state, message))

    def image_pushed(self, result: PushResult) -> None:
        pass


def _pipeline(
    yml: str, source: Path, tmp_path: Path, runner: DockerRunner, name: str, log: MemoryLog,
    env: dict[str, str] | None = None,
) -> tuple[PipelineRun, _Tracer]:  # fmt: skip
    wf, problems = load_text(yml, "wercker.yml")
    assert wf is not None, [p.format() for p in problems]
    repo = RepoSettings("acme/app", "", (PipelineChoice(name),), env or {}, {})
    plan = compile_file(wf, problems, repo, "main", runners=_Docker(), registries={}, log=log)
    inputs = RunInputs(
        facts=FACTS,
        env=env or {},
        secrets={},
        registries={},
        pusher=DaemonlessPusher({}, tmp_path / "layer-cache", credentials=RegistryCredentials({})),
        engine_pusher=EnginePusher(RegistryCredentials({})),
        runner=runner,
        cache_dir=tmp_path / "cache",
        log=log,
    )
    tracer = _Tracer()
    run = run_pipeline(
        dataclasses.replace(plan.pipelines[0], timeouts=NO_LIMITS),
        source=source,
        workdir=tmp_path / f"work-{name}",
        inputs=inputs,
        tracer=tracer,
    )
    return run, tracer


class _Docker:
    """The runner kind of these tests' plans: the engine they were given."""

    def kind_for(self, boxless: object, log: object) -> str:
        return "docker"


def _image_files(registry: Registry, repository: str, tag: str) -> dict[str, bytes]:
    """Every file of every layer of a pushed image, read through the registry API."""
    base = f"http://{registry.host}/v2/{repository}"
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    accept += ", application/vnd.oci.image.manifest.v1+json"
    manifest = requests.get(f"{base}/manifests/{tag}", headers={"Accept": accept}, timeout=30)
    manifest.raise_for_status()
    files: dict[str, bytes] = {}
    for layer in manifest.json()["layers"]:
        blob = requests.get(f"{base}/blobs/{layer['digest']}", timeout=30)
        blob.raise_for_status()
        with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob.content))) as tar:
            for member in tar:
                data = tar.extractfile(member) if member.isreg() else None
                files[member.name] = data.read() if data else member.linkname.encode()
    return files


def _tree_holds(root: Path, needle: str) -> list[str]:
    """Files under ``root`` whose content holds ``needle``, never following a link."""
    assert not root.is_symlink()
    hits = []
    for directory, _dirs, names in os.walk(root, followlinks=False):
        for name in names:
            path = Path(directory, name)
            if stat.S_ISREG(os.lstat(path).st_mode) and needle in path.read_text(errors="replace"):
                hits.append(str(path))
    return hits


@pytest.mark.docker
def test_a_symlinked_output_dir_exports_no_host_directory(
    runner: DockerRunner,
    busybox_box: ImageRef,
    box_registry: Registry,
    canary: Canary,
    tmp_path: Path,
) -> None:
    repository = "security/scratch-escape"
    yml = f"""\
box: {busybox_box}
build:
  steps:
    - script:
        name: escape
        code: |
          echo from the source > app.txt
          rm -rf "$WERCKER_OUTPUT_DIR"
          ln -s "{canary.directory}" "$WERCKER_OUTPUT_DIR"
    - internal/docker-scratch-push:
        repository: {box_registry.host}/{repository}
        tag: v1
deploy:
  steps:
    - script:
        name: look for the host file
        code: |
          ls -la
          if grep -rq "$NEEDLE" . || [ -e private.key ]; then echo LEAKED; exit 1; fi
"""
    source = tmp_path / "checkout"
    source.mkdir()
    (source / "wercker.yml").write_text(yml)
    log = MemoryLog()
    build, tracer = _pipeline(yml, source, tmp_path, runner, "build", log)
    assert build.state is Result.PASSED, (tracer.finished, log.text)

    files = _image_files(box_registry, repository, "v1")
    assert "private.key" not in files
    assert not [n for n, data in files.items() if canary.secret.encode() in data]
    assert files["app.txt"] == b"from the source\n"  # the source dir, as for an empty output
    assert "/pipeline/output is a symlink in the box; it is not followed" in log.text

    assert build.artifact is not None
    assert build.artifact.is_dir() and not build.artifact.is_symlink()
    assert _tree_holds(build.artifact, canary.secret) == []
    assert not (build.artifact / "private.key").exists()

    deploy, tracer = _pipeline(
        yml, build.artifact, tmp_path, runner, "deploy", log, env={"NEEDLE": canary.secret}
    )
    assert deploy.state is Result.PASSED, (tracer.finished, log.text)
    assert "LEAKED" not in log.text
    assert canary.intact()


@pytest.mark.docker
def test_output_links_stay_links_and_devices_and_fifos_stay_in_the_box(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, canary: Canary
) -> None:
    """A symlink to a host file, a hard link to that symlink (which tarfile would resolve on
    the host), a hard link between files, a fifo and a device node in the output."""
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        result = _run(
            session,
            'cd "$OUT"; ln -s "$KEY" lnk; busybox ln lnk hard; echo ok > plain; '
            "busybox ln plain plain2; busybox mkfifo fifo; busybox mknod null c 1 3; "
            "ls -li >&2",
            log,
            OUT=session.paths.output,
            KEY=str(canary.file),
        )
        assert result.exit_code == 0, log.text
        out = session.collect(session.paths.output)
    finally:
        session.close()
    assert os.stat(canary.file).st_nlink == 1
    assert out.is_dir() and not out.is_symlink()
    assert out.is_relative_to(workspace.root)
    for name in ("hard", "lnk"):
        assert (out / name).is_symlink()
        assert os.readlink(out / name) == str(canary.file)
    names = sorted(p.name for p in out.iterdir())
    assert names == ["hard", "lnk", "plain", "plain2"], log.text
    assert (out / "plain2").read_text() == "ok\n"
    assert os.stat(out / "plain").st_ino == os.stat(out / "plain2").st_ino
    assert "skipped output/fifo from the box: fifos are not copied out" in log.text
    assert "skipped output/null from the box: device nodes are not copied out" in log.text
    assert canary.intact()


@pytest.mark.docker
def test_docker_build_reads_no_dockerfile_or_dockerignore_from_the_host(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, canary: Canary
) -> None:
    """docker-py reads a Dockerfile outside the context, and ``.dockerignore``, itself on
    the bot's host (following links) before sending the build to the engine."""
    from bot.errors import StepConfigError
    from bot.wercker.model import Loc
    from steps.base import StepContext
    from steps.docker_build import DockerBuildStep

    def build(options: dict[str, str], log: MemoryLog) -> None:
        step = StepSpec("internal/docker-build", Loc("wercker.yml", 1, 1), "build", options)
        ctx = StepContext(
            step=step, session=session, env={}, secrets={}, lookup={}, facts=FACTS, log=log,
            timeouts=Timeouts(), pusher=None,  # type: ignore[arg-type]
            engine_pusher=EnginePusher(RegistryCredentials({})),
            built_images={},
        )  # fmt: skip
        DockerBuildStep().run(ctx)

    (workspace.source / "Dockerfile").write_text(f"FROM {busybox_box}\n")
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        for dockerfile in (str(canary.file), f"../../../../../../..{canary.file}"):
            with pytest.raises(StepConfigError, match="must be a path inside the context") as e:
                build({"image-name": "x", "dockerfile": dockerfile}, log)
            assert canary.secret not in str(e.value)
        _run(session, 'ln -s "$KEY" .dockerignore', log, KEY=str(canary.file))
        with pytest.raises(StepConfigError, match=r"\.dockerignore .* is a symlink"):
            build({"image-name": "x"}, log)
    finally:
        session.close()
    assert canary.secret not in log.text


# -- 7: nothing a step starts outlives it ---------------------------------------------------


def _processes(dockerd: Dockerd, container: str) -> list[str]:
    """The command lines of every process in the container, seen from the engine."""
    top = dockerd.client().api.top(container, ps_args="-o pid,args")
    return [str(p[-1]) for p in top["Processes"]]


def _only_the_keepalive(left: list[str]) -> None:
    """PID 1 (``sh -c trap ...``) and the ``sleep 3600`` it waits on; nothing of a step."""
    assert [p for p in left if not p.startswith("sh -c trap ") and p != "sleep 3600"] == [], left


@pytest.mark.docker
def test_background_processes_die_with_their_step_and_do_not_hold_it(
    runner: DockerRunner, busybox_box: ImageRef, workspace: Workspace, dockerd: Dockerd
) -> None:
    log = MemoryLog()
    session = runner.open(busybox_box, {}, workspace, None, log)
    try:
        assert session.container_id is not None
        started = time.monotonic()
        result = _run(
            session,
            # stdout kept open; a new session; a double fork with stdout closed.
            "sleep 300 & busybox setsid sleep 301 & (sleep 302 </dev/null >/dev/null 2>&1 &)\n"
            "echo step done",
            log,
        )
        took = time.monotonic() - started
        assert result.exit_code == 0
        assert "step done" in log.text
        assert took < 5, f"the step took {took:.1f}s: something held it"
        _only_the_keepalive(_processes(dockerd, session.container_id))
        # A timed-out step's children go too, and the next step runs as usual.
        timed = session.run_script(
            "busybox setsid sleep 303 & sleep 304",
            env={},
            secrets={},
            cwd=session.paths.source,
            timeouts=Timeouts(command=1.0, no_response=None),
            log=log,
        )
        assert timed.timed_out == "command-timeout"
        _only_the_keepalive(_processes(dockerd, session.container_id))
        assert _run(session, "echo again", log).exit_code == 0
    finally:
        session.close()


# -- the extractor on crafted archives (no engine) -------------------------------------------


def _tar(*members: tuple[tarfile.TarInfo, bytes | None]) -> list[bytes]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buf.getvalue()
    return [raw[i : i + 1000] for i in range(0, len(raw), 1000)]


def _info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


@pytest.mark.parametrize(
    "members",
    [
        # a member through a symlink to a host directory
        [
            (_info("out", tarfile.DIRTYPE), None),
            (_info("out/up", tarfile.SYMTYPE, "{canary_dir}"), None),
            (_info("out/up/private.key"), b"overwritten"),
        ],
        # a file written over a symlink to a host file
        [
            (_info("out", tarfile.DIRTYPE), None),
            (_info("out/key", tarfile.SYMTYPE, "{canary_file}"), None),
            (_info("out/key"), b"overwritten"),
        ],
        # outside the destination
        [(_info("out", tarfile.DIRTYPE), None), (_info("out/../../escaped"), b"x")],
        [(_info("/abs/escaped"), b"x")],
        [(_info("elsewhere/escaped"), b"x")],
        # a hard link to a host file
        [
            (_info("out", tarfile.DIRTYPE), None),
            (_info("out/hard", tarfile.LNKTYPE, "{canary_file}"), None),
        ],
        [
            (_info("out", tarfile.DIRTYPE), None),
            (_info("out/hard", tarfile.LNKTYPE, "out/../../../../{canary_file}"), None),
        ],
    ],
    ids=["through-symlink", "over-symlink", "dotdot", "absolute", "other-top", "hardlink-abs",
         "hardlink-dotdot"],
)  # fmt: skip
def test_the_extractor_refuses_members_that_leave_the_destination(
    members: list[tuple[tarfile.TarInfo, bytes | None]], canary: Canary, tmp_path: Path
) -> None:
    for info, _ in members:
        info.linkname = info.linkname.format(
            canary_dir=canary.directory, canary_file=canary.file
        ).replace("//", "/")
    dest = tmp_path / "dest"
    dest.mkdir()
    warnings: list[str] = []
    with pytest.raises(tarfile.FilterError):
        extract_stream(_tar(*members), dest, "out", warnings.append)
    assert canary.intact()
    assert sorted(p.name for p in canary.directory.iterdir()) == ["private.key"]
    assert not (tmp_path / "escaped").exists()
    inode = canary.file.stat().st_ino
    assert not [p for p in dest.rglob("*") if not p.is_symlink() and p.lstat().st_ino == inode]


def test_the_extractor_skips_special_files_and_a_symlinked_top(tmp_path: Path) -> None:
    warnings: list[str] = []
    dest = tmp_path / "a"
    dest.mkdir()
    fifo = _info("out/fifo", tarfile.FIFOTYPE)
    dev = _info("out/disk", tarfile.BLKTYPE)
    dev.devmajor, dev.devminor = 8, 0
    root = extract_stream(
        _tar((_info("out", tarfile.DIRTYPE), None), (fifo, None), (dev, None),
             (_info("out/ok"), b"fine")),
        dest, "out", warnings.append, label="/pipeline/out",
    )  # fmt: skip
    assert root == dest / "out"
    assert sorted(p.name for p in root.iterdir()) == ["ok"]
    assert warnings == [
        "skipped out/fifo from the box: fifos are not copied out",
        "skipped out/disk from the box: device nodes are not copied out",
    ]
    warnings.clear()
    dest = tmp_path / "b"
    dest.mkdir()
    root = extract_stream(
        _tar((_info("out", tarfile.SYMTYPE, "/etc"), None)),
        dest, "out", warnings.append, label="/pipeline/out",
    )  # fmt: skip
    assert root.is_dir() and not root.is_symlink()
    assert list(root.iterdir()) == []
    assert warnings == [
        "/pipeline/out is a symlink in the box; it is not followed (taken as empty)"
    ]


def test_unsafe_archive_error_names_the_member() -> None:
    err = UnsafeArchiveError(_info("out/x"), "goes through a symlink or a file")
    assert str(err) == "'out/x' goes through a symlink or a file"
