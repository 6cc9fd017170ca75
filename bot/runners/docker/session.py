"""One pipeline's box container: script steps, collecting files, snapshots, restart, cleanup."""

from __future__ import annotations

import contextlib
import posixpath
import re
import secrets as _random
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import requests
from docker.errors import DockerException, NotFound

from bot.engine import BoxSnapshot, EngineHandle
from bot.errors import InfrastructureError, StepError
from bot.logs import Log
from bot.runners.base import (
    GUEST_ROOT,
    GuestPaths,
    ScriptResult,
    ServiceBox,
    Timeouts,
    Workspace,
)
from bot.runners.docker.archive import (
    MAX_COLLECT_BYTES,
    ArchiveTooLargeError,
    archive_of,
    extract_stream,
)
from bot.runners.docker.execs import run_capped, run_exec
from bot.runners.docker.pulls import pull
from bot.runners.docker.services import ServiceSet
from bot.runners.docker.sweep import BUILT_PREFIX
from bot.runners.staging import check_name, tar_dir
from bot.runners.wrapper import (
    MAX_HELPER_BYTES,
    command,
    parse_env_dump,
    parse_message,
    wants_set_e,
)

HELPER_GUEST = f"{GUEST_ROOT}/.wercker-bot"
"""A tmpfs in the box (``HELPER_TMPFS``) where the wrapper writes each step's script, env
dump and message. It is the box's own scratch space, not the bot's: the bot writes nothing
there and reads it back only with a command run in the box, as the step's user, so a link
planted there resolves inside the box and reaches nothing the step could not read itself.
A tmpfs's contents never enter a ``docker commit``, so none of it lands in an image."""

HELPER_TMPFS = "rw,nosuid,nodev,noexec,size=64m,mode=1777"
"""Mode 1777: whatever user the box runs steps as can write there."""

# Reads what a step left: $1 (env dump) on stdout, $2 (message) on stderr when $4 is 1,
# then removes $1-$3 (the dump holds every value the step saw, secrets included). Only a
# regular file, not a link, is read, so a fifo planted there cannot block the read.
_TAKE_LEFTOVERS = r"""
take() { if [ -f "$1" ] && [ ! -L "$1" ]; then cat -- "$1"; fi; }
take "$1" 2>/dev/null
if [ "$4" = 1 ]; then { take "$2" 2>/dev/null; } >&2; fi
rm -f -- "$1" "$2" "$3" 2>/dev/null
exit 0
"""

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
        log: Log,
    ) -> None:
        self.engine = engine
        self.log = log
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
        self.services: ServiceSet | None = None
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
        shell, exactly as the local runner does, and returns the env it left behind.

        The code travels as an argument; the wrapper's files live in the box's helper tmpfs
        under fresh random names. When the step ends (or times out) every process it started
        is killed (``run_exec``), then its env dump and, after a failure, its message are read
        back inside the box. A failure with a message raises ``StepError`` with it; a code
        too long to pass raises ``StepConfigError``."""
        container = self._require_container()
        argv = command(self.shell, code)
        # Fresh random names per step: nothing a step planted for a later step's files is
        # in their way (and the wrapper replaces the script file rather than write into it).
        base = f"{HELPER_GUEST}/{_random.token_hex(16)}"
        script, dump, message = f"{base}.sh", f"{base}.env", f"{base}.msg"
        full_env = {**BASE_STEP_ENV, **self.box_env, **env, **secrets}
        full_env.update(
            WB_ENV_DUMP=dump,
            WB_MESSAGE_FILE=message,
            WB_CWD=cwd,
            WB_SET_E="1" if wants_set_e(code) else "0",
            WB_SCRIPT=script,
        )
        outcome = run_exec(
            self.engine.control.api,
            self.engine.stream.api,
            container,
            argv,
            full_env,
            timeouts,
            log,
        )
        failed = outcome.exit_code != 0 and not outcome.timed_out
        exported, text = self._take_leftovers(container, dump, message, script, failed, log)
        if failed and not self._running():
            log.warn("the box container stopped during the step")
        if text and failed:
            raise StepError(text, outcome.exit_code)
        return ScriptResult(outcome.exit_code, outcome.timed_out, exported)

    def _take_leftovers(
        self, container: str, dump: str, message: str, script: str, failed: bool, log: Log
    ) -> tuple[dict[str, str], str]:
        """The env a step exported and, after a failure, its message; both read in the box
        (see ``HELPER_GUEST``) and at most ``MAX_HELPER_BYTES`` each. Runs after the step's
        processes were killed, so nothing changes the files while they are read."""
        try:
            got = run_capped(
                self.engine.control.api,
                container,
                ["sh", "-c", _TAKE_LEFTOVERS, "wercker-bot", dump, message, script,
                 "1" if failed else "0"],
                limit=MAX_HELPER_BYTES,
            )  # fmt: skip
        except DockerException:
            # The box is gone or stopped (a step may stop it): nothing to sync, and the
            # tmpfs with the files goes with the container.
            return {}, ""
        exported: dict[str, str] = {}
        if got.stdout_cut:
            log.warn(
                f"the step's environment is over {MAX_HELPER_BYTES // (1024 * 1024)} MiB; "
                "its exports are not passed on"
            )
        else:
            exported = parse_env_dump(got.stdout)
        return exported, parse_message(got.stderr) if failed else ""

    def collect(self, guest_dir: str, max_bytes: int = MAX_COLLECT_BYTES) -> Path:
        """Copies ``guest_dir`` out of the container into a fresh dir under the workspace
        and returns the copy (named like the guest dir), always a directory the bot made.

        The engine hands the directory over as a tar (symlinks in it stay symlinks) and
        ``extract_stream`` refuses members through links and skips device nodes and fifos,
        with a warning. A ``guest_dir`` that a step replaced with a symlink is not followed:
        the copy is empty, with a warning. Raises ``InfrastructureError`` when the directory
        cannot be copied (missing, engine error, an archive the bot refuses, more than
        ``max_bytes`` in it: ``MAX_COLLECT_BYTES``); nothing of a failed copy is kept."""
        container = self._require_container()
        guest = "/" + posixpath.normpath(guest_dir).lstrip("/")
        # No trailing slash reaches the engine: with one it would follow a final symlink.
        name = posixpath.basename(guest)
        if not name or name in (".", ".."):
            raise InfrastructureError(f"cannot copy {guest_dir!r} out of the box: not a directory")
        dest = Path(tempfile.mkdtemp(prefix="collect-", dir=self.workspace.root))
        try:
            return self._extract(container, guest, name, dest, max_bytes)
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise

    def _extract(self, container: str, guest: str, name: str, dest: Path, max_bytes: int) -> Path:
        try:
            # Leaving the block closes the response: the engine stops sending the rest of
            # an archive that was refused or cut.
            with archive_of(self.engine.stream.api, container, guest) as chunks:
                return extract_stream(chunks, dest, name, self.log.warn, guest, max_bytes)
        except ArchiveTooLargeError as err:
            raise InfrastructureError(str(err)) from None
        except NotFound:
            raise InfrastructureError(f"{guest} does not exist in the box container") from None
        except DockerException as err:
            raise InfrastructureError(f"cannot copy {guest} out of the box: {err}") from None
        except tarfile.FilterError as err:
            raise InfrastructureError(f"refused to copy {guest} out of the box: {err}") from None
        except (tarfile.TarError, OSError) as err:
            raise InfrastructureError(f"cannot copy {guest} out of the box: {err}") from None

    def put_dir(self, source: Path, name: str) -> str:
        """``Session.put_dir``: through the engine's archive API into ``/pipeline/<name>``
        (never a bind mount of a host path), owned by root, files read-only."""
        container = self._require_container()
        data = tar_dir(source, check_name(name))
        try:
            ok = self.engine.stream.api.put_archive(container, self.paths.pipeline, data)
        except DockerException as err:
            raise InfrastructureError(f"cannot copy {name} into the box: {err}") from None
        if not ok:
            raise InfrastructureError(f"cannot copy {name} into the box")
        return posixpath.join(self.paths.pipeline, name)

    def snapshot(self) -> BoxSnapshot:
        """The box container as it stands, for the engine pusher (``SnapshotSession``):
        this engine, the container, the box image's config, and the prefix under which
        images built next to it are tagged (``close`` removes them)."""
        container = self._require_container()
        return BoxSnapshot(self.engine, container, dict(self.box_config), _built_prefix(container))

    # -- containers next to the box (bot.runners.docker.services) ---------------------------

    def run_container(self, service: ServiceBox, log: Log) -> dict[str, str]:
        """``internal/docker-run``: pulls and starts ``service`` in the box's network
        namespace, names it in the box's ``/etc/hosts`` and adds its link variables to every
        later step's env (also returned). ``close`` removes it at the latest."""
        self._require_container()
        if self.services is None:
            raise InfrastructureError("this session cannot start containers")
        image = pull(
            self.engine,
            service.image,
            log,
            what=f"container '{service.name}'",
            named_in="the step's 'image' option",
        )
        links = self.services.start(service, image, log)
        self.box_env.update(links)
        self.add_hosts([service.name], log)
        return links

    def kill_container(self, name: str, log: Log) -> bool:
        """``internal/docker-kill``: stops and removes the container ``name`` started by
        ``run_container``; whether there was one."""
        return self.services is not None and self.services.stop(name)

    def add_hosts(self, names: list[str], log: Log) -> None:
        """Names each of ``names`` 127.0.0.1 in the box's ``/etc/hosts`` (they share its
        network namespace). A box whose hosts file cannot be written gets a warning: the
        link variables still work."""
        valid = [n for n in names if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", n)]
        if not valid:
            return
        try:
            got = run_capped(
                self.engine.control.api,
                self._require_container(),
                [
                    "sh",
                    "-c",
                    'for n; do printf "127.0.0.1\\t%s\\n" "$n"; done >> /etc/hosts',
                    "wercker-bot",
                    *valid,
                ],
                user="0",
                limit=4096,
            )
        except DockerException:
            got = None
        if got is None or got.exit_code != 0:
            log.warn(
                f"cannot name {', '.join(valid)} in the box's /etc/hosts; use the "
                "<NAME>_PORT_<port>_TCP_ADDR variables"
            )

    # -- lifecycle -------------------------------------------------------------------------

    def restart(self, log: Log) -> None:
        """Starts the container again if a step stopped it (after-steps still run, as in
        Wercker). Files survive (not the helper tmpfs, which holds nothing between steps)."""
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
        self.open_helper_dir()

    def open_helper_dir(self) -> None:
        """Makes the helper tmpfs writable for whatever user the box runs steps as. Needed
        after every start: the runtime gives a tmpfs the mode of the directory it covers,
        and an image committed from a box already has that directory (mode 0755)."""
        try:
            got = run_capped(
                self.engine.control.api,
                self._require_container(),
                ["sh", "-c", 'chmod 1777 "$1"', "wercker-bot", HELPER_GUEST],
                user="0",
                limit=4096,
            )
        except DockerException as err:
            raise InfrastructureError(f"cannot prepare {HELPER_GUEST} in the box: {err}") from None
        if got.exit_code != 0:
            raise InfrastructureError(f"cannot prepare {HELPER_GUEST} in the box")

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
            _remove_built_images(api, _built_prefix(self.container_id))
        if self.services is not None:
            self.services.close()  # after the box: the holder owns its network namespace
        for client in (self.engine.control, self.engine.stream):
            with contextlib.suppress(Exception):
                client.close()

    # -- internals -------------------------------------------------------------------------

    def _require_container(self) -> str:
        if self._closed or not self.container_id:
            raise InfrastructureError("the box container is gone (the session is closed)")
        return self.container_id

    def _answers(self) -> bool:
        try:
            got = run_capped(
                self.engine.control.api, self._require_container(), ["sh", "-c", ":"], limit=4096
            )
        except DockerException:
            return False
        return got.exit_code == 0

    def _running(self) -> bool:
        try:
            state = self.engine.control.api.inspect_container(self.container_id)["State"]
        except DockerException:
            return False
        return bool(state.get("Running"))


def _built_prefix(container_id: str) -> str:
    """What images built in a session are tagged under (``sweep`` finds them by it too)."""
    return f"{BUILT_PREFIX}{container_id[:12]}-"


def _remove_built_images(api: Any, prefix: str) -> None:
    with contextlib.suppress(DockerException):
        for image in api.images(filters={"reference": f"{prefix}*"}):
            for tag in image.get("RepoTags") or []:
                if tag.startswith(prefix):
                    with contextlib.suppress(DockerException):
                        api.remove_image(tag, force=True)
