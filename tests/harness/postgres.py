"""A private PostgreSQL server for the tests that run the store on PostgreSQL.

``postgres`` (session scope) runs Debian's ``initdb`` into a new ``/tmp`` dir and starts the
server with ``pg_ctl`` on 127.0.0.1, a free port and a socket in that dir, with
``fsync=off`` (a test database need not survive a power cut). As root (CI) both run as the
``postgres`` user (``initdb`` refuses root) through ``runuser``, and the dir is owned by
that user. The server is stopped by the pid in ``postmaster.pid`` at the end of the
session; a watchdog process stops it too if pytest dies without tearing down (kill -9),
so no server is left behind.

A template database is migrated once (the Alembic chain, ``upgrade head``), and
``pg_url`` gives each test a fresh database copied from it (``CREATE DATABASE … TEMPLATE``,
a file copy), dropped after the test.

Without PostgreSQL's binaries the tests skip with the reason; under CI (``CI=true``) they
fail instead: CI installs ``postgresql`` (``scripts/setup.sh --tests``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PG_ROOT = Path("/usr/lib/postgresql")
TEMPLATE = "wb_template"
STOP_SECONDS = 20.0
# Run by the watchdog: waits for EOF on stdin (pytest holds the other end, so EOF comes
# when pytest exits, however it exits), then stops the server by its pid and removes its
# directory. Signal 3 is SIGQUIT: PostgreSQL's immediate shutdown.
_WATCHDOG = """
import os, shutil, sys, time
pid, root = int(sys.argv[1]), sys.argv[2]
sys.stdin.buffer.read()

def alive():
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False

if alive():
    os.kill(pid, 3)
for _ in range(200):
    if not alive():
        break
    time.sleep(0.1)
shutil.rmtree(root, ignore_errors=True)
"""


def pg_bindir() -> Path | None:
    """The newest installed PostgreSQL's ``bin`` dir (Debian's layout), or None."""
    found = sorted(
        (p for p in PG_ROOT.glob("*/bin") if (p / "pg_ctl").exists()),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    return found[-1] if found else None


def _unavailable() -> str | None:
    if pg_bindir() is None:
        return (
            f"PostgreSQL is not installed (no {PG_ROOT}/*/bin/pg_ctl; apt-get install postgresql)"
        )
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root needs runuser (util-linux) to start PostgreSQL as postgres"
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a postgres user (Debian's postgresql package makes it)"
    return None


def require_postgres() -> None:
    """Skips the test (with the reason) when PostgreSQL cannot run here; under CI
    (``CI`` set) fails it instead."""
    reason = _unavailable()
    if reason is None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Postgres:
    """A running server: ``url(name)`` is the SQLAlchemy URL of one of its databases,
    ``new_database()`` a fresh copy of the migrated template. Startup and per-database
    timings are kept for reports (``started_in``, ``created_in``)."""

    port: int
    root: Path
    bindir: Path
    started_in: float = 0.0
    created_in: list[float] = field(default_factory=list)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str, user: str = "postgres") -> str:
        return f"postgresql+psycopg://{user}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> None:
        """Runs one statement as the superuser, outside a transaction (CREATE DATABASE)."""
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres",
            autocommit=True,
        ) as conn:  # fmt: skip
            conn.execute(sql.encode())

    def new_database(self) -> str:
        """A new database, a copy of the migrated template, and its name."""
        name = f"t{os.getpid()}_{next(self._names)}"
        started = time.perf_counter()
        self.admin(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE}")
        self.created_in.append(time.perf_counter() - started)
        return name

    def drop_database(self, name: str) -> None:
        self.admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def pid(self) -> int:
        return int((self.data / "postmaster.pid").read_text().splitlines()[0])


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not: a container's init may never reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _as_postgres(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def _run(argv: list[str], what: str) -> None:
    done = subprocess.run(_as_postgres(argv), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{what} failed ({done.returncode}): {done.stderr or done.stdout}")


def _initdb_and_start(server: Postgres) -> None:
    bindir, root = server.bindir, server.root
    _run(
        [str(bindir / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust",
         "-E", "UTF8", "--locale=C", "--no-sync"],
        "initdb",
    )  # fmt: skip
    options = (
        f"-c listen_addresses=127.0.0.1 -p {server.port} -k {root} -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
    )
    log = root / "server.log"
    try:
        _run(
            [str(bindir / "pg_ctl"), "-D", str(server.data), "-l", str(log),
             "-o", options, "-w", "-t", "60", "start"],
            "pg_ctl start",
        )  # fmt: skip
    except RuntimeError as err:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"{err}\n{tail}") from err


def start_postgres() -> tuple[Postgres, subprocess.Popen[bytes]]:
    """initdb, pg_ctl start, and the watchdog; the server and the watchdog."""
    bindir = pg_bindir()
    assert bindir is not None
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="wb-pg-"))  # short: the socket path must fit
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    server = Postgres(port=free_port(), root=root, bindir=bindir)
    try:
        _initdb_and_start(server)
    except BaseException:
        with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
            os.kill(server.pid(), signal.SIGQUIT)  # started, then failed: leave nothing
        shutil.rmtree(root, ignore_errors=True)
        raise
    watchdog = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG, str(server.pid()), str(root)],
        stdin=subprocess.PIPE,
        start_new_session=True,  # a Ctrl-C to pytest's group must not stop it first
    )
    server.started_in = time.perf_counter() - started
    return server, watchdog


def migrate_template(server: Postgres) -> None:
    """Creates the template database and runs the whole migration chain on it."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import create_engine

    from bot.store.migrations import SCRIPT_LOCATION

    server.admin(f"CREATE DATABASE {TEMPLATE}")
    engine = create_engine(server.url(TEMPLATE))
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    engine.dispose()


def stop_postgres(server: Postgres, watchdog: subprocess.Popen[bytes]) -> None:
    """Fast shutdown by the pid in postmaster.pid (SIGINT), SIGKILL if it hangs; then the
    watchdog is let go (it finds the server gone and removes the dir)."""
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
        pid = server.pid()
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + STOP_SECONDS
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert watchdog.stdin is not None
    watchdog.stdin.close()
    watchdog.wait(timeout=STOP_SECONDS + 5)
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """The session's PostgreSQL server, with the migrated template database."""
    require_postgres()
    server, watchdog = start_postgres()
    try:
        migrate_template(server)
        yield server
    finally:
        stop_postgres(server, watchdog)


@pytest.fixture
def pg_url(postgres: Postgres) -> Iterator[str]:
    """The URL of a fresh database at the head revision, dropped after the test."""
    name = postgres.new_database()
    yield postgres.url(name)
    postgres.drop_database(name)
