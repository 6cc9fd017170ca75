"""One pipeline's box container: script steps, collecting files, commit, restart, cleanup."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Any

import requests
from docker.errors import DockerException, NotFound

from bot.errors import InfrastructureError, StepError
from bot.logs import Log
from bot.pushers import engine as engine_pusher
from bot.pushers.engine import EngineHandle
from bot.pushers.model import ImageConfig, PushResult, Target
from bot.runners.base import GUEST_ROOT, GuestPaths, ScriptResult, Timeouts, Workspace
from bot.runners.docker.archive import extract_stream
from bot.runners.docker.execs import run_exec
from bot.runners.wrapper import WRAPPER, parse_env_dump, wants_set_e

HELPER_GUEST = f"{GUEST_ROOT}/.wercker-bot"
"""Where the workspace's helper dir is bind-mounted. A bind mount's contents never enter a
commit (only the empty mount point does), so scripts and env dumps stay out of images."""

STOP_WAIT_SECONDS = 15

# Wercker exported TERM for every step; the local runner does the same.
BASE_STEP_ENV = {"TERM": "xterm-256color"}


class DockerSession:
    """A running box container. ``paths`` are guest paths.

    Create it through ``DockerRunner.open``. Values (box env, step env, secrets) reach the
    container only through each exec's environment, never its creation env: the engine
    copies a container's env into every image committed from it.
    """

    kind = "docker"
    can_commit = True

    def __init__(
        self,
        engine: EngineHandle,
        workspace: Workspace,
        box_env: dict[str, str],
        source_path: str,
    ) -> None:
        self.engine = engine
        self.workspace = workspace
        self.box_env = dict(box_env)
        self.paths = GuestPaths(
            pipeline=GUEST_ROOT,
            root=source_path,
            source=source_path,
            output=f"{GUEST_ROOT}/output",
            cache=f"{GUEST_ROOT}/cache",
        )
        self.container_id: str | None = None
        self.box_config: dict[str, Any] = {}
        self.shell = "sh"
        self.built_images: list[str] = []
        self._counter = 0
        self._closed = False

    # -- steps -----------------------------------------------------------------------------

    def run_script(
        self,
        code: str,
        *,
        env: dict[str, str],
        secrets: dict[str, str],
        cwd: str,
        timeouts: Timeouts,
        log: Log,
    ) -> ScriptResult:
        """Runs ``code`` through the shared wrapper (``bot.runners.wrapper``) in the box's
        shell, exactly as the local runner does, and returns the env it left behind."""
        container = self._require_container()
        self._counter += 1
        n = self._counter
        helper = self.workspace.helper
        (helper / "wrapper.sh").write_text(WRAPPER, encoding="utf-8")
        (helper / f"step-{n}.sh").write_text(code, encoding="utf-8")
        dump = helper / f"env-{n}"
        message = helper / f"message-{n}"
        full_env = {**BASE_STEP_ENV, **self.box_env, **env, **secrets}
        full_env.update(
            WB_ENV_DUMP=f"{HELPER_GUEST}/env-{n}",
            WB_MESSAGE_FILE=f"{HELPER_GUEST}/message-{n}",
            WB_CWD=cwd,
            WB_SET_E="1" if wants_set_e(code) else "0",
            WB_SCRIPT=f"{HELPER_GUEST}/step-{n}.sh",
        )
        outcome = run_exec(
            self.engine.control.api,
            self.engine.stream.api,
            container,
            [self.shell, f"{HELPER_GUEST}/wrapper.sh"],
            full_env,
            timeouts,
            log,
        )
        exported = parse_env_dump(dump.read_bytes()) if dump.exists() else {}
        text = message.read_text("utf-8", errors="replace").strip() if message.exists() else ""
        # The dump holds every value the step saw, secrets included: keep it on disk no
        # longer than needed.
        for path in (dump, message, helper / f"step-{n}.sh"):
            path.unlink(missing_ok=True)
        if outcome.exit_code != 0 and not outcome.timed_out and not self._running():
            log.warn("the box container stopped during the step")
        if text and outcome.exit_code != 0 and not outcome.timed_out:
            raise StepError(text, outcome.exit_code)
        return ScriptResult(outcome.exit_code, outcome.timed_out, exported)

    def collect(self, guest_dir: str) -> Path:
        """Copies ``guest_dir`` out of the container into a fresh dir under the workspace
        and returns the copy (named like the guest dir)."""
        container = self._require_container()
        dest = Path(tempfile.mkdtemp(prefix="collect-", dir=self.workspace.root))
        try:
            chunks, _stat = self.engine.stream.api.get_archive(container, guest_dir)
            extract_stream(chunks, dest)
        except NotFound:
            raise InfrastructureError(f"{guest_dir} does not exist in the box container") from None
        except DockerException as err:
            raise InfrastructureError(f"cannot copy {guest_dir} out of the box: {err}") from None
        name = Path(guest_dir.rstrip("/")).name or "root"
        return dest / name

    def commit_and_push(self, config: ImageConfig, target: Target, log: Log) -> PushResult:
        """The engine pusher (``bot.pushers.engine``) on this session's container."""
        container = self._require_container()
        return engine_pusher.commit_and_push(
            self.engine, container, self.box_config, config, target, log
        )

    def build_image(self, context_dir: Path, options: dict[str, Any], name: str, log: Log) -> str:
        """``internal/docker-build``: builds ``context_dir`` and keeps the image (tagged with
        a session-local name, so pushing and untagging it cannot delete it) until close."""
        image_id = engine_pusher.build_image(self.engine, str(context_dir), options, log)
        local = f"wercker-bot-build/{(self.container_id or 'x')[:12]}-{_safe(name)}"
        try:
            self.engine.control.api.tag(image_id, local, "latest", force=True)
        except DockerException as err:
            raise InfrastructureError(f"cannot tag the built image: {err}") from None
        self.built_images.append(f"{local}:latest")
        return image_id

    # -- lifecycle -------------------------------------------------------------------------

    def restart(self, log: Log) -> None:
        """Starts the container again if a step stopped it (after-steps still run, as in
        Wercker). Files survive; processes a step left running in a live container too."""
        container = self._require_container()
        # The engine records a container's death a moment after the step's exec ends, so
        # "Running" alone can lie: ask the box to run something.
        if self._running() and self._answers():
            return
        log.info("restarting the box container for the after-steps")
        api = self.engine.control.api
        try:
            if self._running():
                api.wait(container, timeout=STOP_WAIT_SECONDS)
            api.start(container)
        except DockerException as err:
            raise InfrastructureError(f"cannot restart the box container: {err}") from None
        except requests.exceptions.RequestException:
            raise InfrastructureError("the box container neither runs nor stops") from None
        if not self._answers():
            raise InfrastructureError("the box container does not answer after a restart")

    def close(self) -> None:
        """Removes the container (with its anonymous volumes) and the images this session
        built. Idempotent, never raises, safe on a half-opened session."""
        if self._closed:
            return
        self._closed = True
        api = self.engine.control.api
        # Gone already, or the engine went away: nothing more can be done from here.
        if self.container_id:
            with contextlib.suppress(DockerException):
                api.remove_container(self.container_id, force=True, v=True)
        for ref in self.built_images:
            with contextlib.suppress(DockerException):
                api.remove_image(ref, force=True)
        for client in (self.engine.control, self.engine.stream):
            with contextlib.suppress(Exception):
                client.close()

    # -- internals -------------------------------------------------------------------------

    def _require_container(self) -> str:
        if self._closed or not self.container_id:
            raise InfrastructureError("the box container is gone (the session is closed)")
        return self.container_id

    def _answers(self) -> bool:
        api = self.engine.control.api
        try:
            exec_id = api.exec_create(
                self.container_id, ["sh", "-c", ":"], stdout=True, stderr=True
            )["Id"]
            api.exec_start(exec_id)
            return bool(api.exec_inspect(exec_id).get("ExitCode") == 0)
        except DockerException:
            return False

    def _running(self) -> bool:
        try:
            state = self.engine.control.api.inspect_container(self.container_id)["State"]
        except DockerException:
            return False
        return bool(state.get("Running"))


def _safe(name: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "._-" else "-" for c in name.lower())
    return cleaned.strip(".-")[:64] or "image"
