"""Alembic migrations (``bot/store/migrate.py``): a database made by the last release, with
builds in it, is refused by ``serve``/``worker`` until ``wercker-bot migrate`` (the installed
console script) brings it to head, losing nothing.

The old database is built the way the release built it: ``create_all`` of its metadata, kept
frozen in the first revision (no git history needed)."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine

from bot.app import GUNICORN_BOOT_ERROR, create_app
from bot.cli import main
from bot.models import Result
from bot.settings import Settings, load_settings
from bot.store import migrate
from bot.store.migrations import SCRIPT_LOCATION
from bot.store.migrations.versions import m0001_first_release as release
from bot.store.migrations.versions.m0002_release_indexes import INDEXES as LATER_INDEXES
from bot.store.rows import NewPush
from bot.store.schema import metadata as today
from bot.wiring import build_services
from tests.harness.builds import open_store, sql_store

HEAD = migrate.head_revision()
SCRIPT = str(Path(sys.executable).with_name("wercker-bot"))
SHA = "a" * 40


def _settings(tmp_path: Path) -> Settings:
    config = tmp_path / "bot.toml"
    secret = "x" * 16
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[github]\nwebhook_secret = "{secret}"\n')
    return load_settings(config, {})


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def _cli(settings: Settings, *args: str, console: bool = True) -> Ran:
    """``wercker-bot ARGS --config F``: the installed console script in a process of its
    own, or (``console=False``, faster) ``bot.cli.main`` in this one."""
    argv = [*args, "--config", str(settings.config_path)]
    if console:
        done = subprocess.run(
            [SCRIPT, *argv], capture_output=True, text=True, timeout=120, check=False
        )
        return Ran(done.returncode, done.stdout, done.stderr)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return Ran(code, out.getvalue(), err.getvalue())


def _fill(db: Path) -> None:
    """Two builds as the release stored them: one finished (pipelines, steps, an image,
    logs, statuses delivered) and one still queued."""
    engine = create_engine(f"sqlite:///{db}")
    t = release.metadata.tables
    with engine.begin() as conn:
        for i, sha in ((1, SHA), (2, "b" * 40)):
            conn.execute(
                t["builds"].insert().values(
                    id=i, repo="acme/app", ref="refs/heads/main", branch="main", sha=sha,
                    before_sha="0" * 40, message=f"commit {i}", pipelines='["build"]',
                    created_at=1000.0 + i,
                )
            )
            conn.execute(
                t["deliveries"].insert().values(
                    hook_id="7", delivery_id=f"d{i}", build_id=i, received_at=1000.0 + i
                )
            )
            conn.execute(
                t["status_outbox"].insert().values(
                    repo="acme/app", sha=sha, context="wb/build", state="pending",
                    description="Queued", target_url=f"http://bot/builds/{i}",
                    created_at=1000.0 + i, next_try_at=1000.0 + i,
                    outcome="delivered" if i == 1 else "queued",
                )
            )
        conn.execute(
            t["attempts"].insert().values(
                id=1, build_id=1, number=1, state="passed", description="Passed",
                runner="local", worker="h:1:t", created_at=1001.0, started_at=1002.0,
                finished_at=1003.0,
            )
        )
        conn.execute(
            t["attempts"].insert().values(
                id=2, build_id=2, number=1, state="queued", description="Queued",
                created_at=1002.0,
            )
        )
        conn.execute(
            t["pipelines"].insert().values(
                id=1, attempt_id=1, position=0, name="build", state="passed"
            )
        )
        conn.execute(
            t["steps"].insert().values(
                pipeline_id=1, position=0, phase="main", step_id="script", name="hello",
                state="passed", exit_code=0,
            )
        )
        conn.execute(
            t["images"].insert().values(
                attempt_id=1, pipeline="build", registry="r.example", repository="acme/app",
                tags="main", digest="sha256:" + "0" * 64, created_at=1003.0,
            )
        )
        conn.execute(
            t["logs"].insert(),
            [{"attempt_id": 1, "text": f"line {n}\n", "created_at": 1002.0} for n in range(5)],
        )
    engine.dispose()


def _old_database(settings: Settings, made_by: str) -> Path:
    """A database as ``made_by`` left it (none of them has an ``alembic_version`` table):
    the last release; the first release, before three indexes were added; unreleased code
    that already had ``push_ancestors``."""
    db = settings.db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{db}")
    (today if made_by == "unreleased" else release.metadata).create_all(engine)
    engine.dispose()
    if made_by == "first-release":
        with sqlite3.connect(db) as conn:
            for name in LATER_INDEXES:
                conn.execute(f"DROP INDEX {name}")
    _fill(db)
    return db


def _rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with sqlite3.connect(db) as conn:
        return {
            name: conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()
            for name in release.metadata.tables
        }


def _shape(db: Path) -> dict[str, Any]:
    """Every table's columns and indexes (name, unique, columns), as SQLite reports them."""
    with sqlite3.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        shape: dict[str, Any] = {}
        for table in sorted(tables):
            columns = conn.execute(f"PRAGMA table_info({table})").fetchall()
            indexes = {
                row[1]: (
                    row[2],
                    [c[2] for c in conn.execute(f"PRAGMA index_info({row[1]})").fetchall()],
                )
                for row in conn.execute(f"PRAGMA index_list({table})").fetchall()
            }
            shape[table] = (columns, indexes)
        return shape


def _version(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]


@pytest.mark.parametrize("made_by", ["last-release", "first-release", "unreleased"])
def test_old_database_is_refused_then_migrated_without_loss(
    tmp_path: Path, made_by: str
) -> None:
    settings = _settings(tmp_path)
    db = _old_database(settings, made_by)
    before = _rows(db)
    console = made_by == "last-release"  # the others through main(), in this process

    # Before migrating, serve and worker refuse: one line saying what to run, exit 2.
    for args in (["worker"], ["serve", "--port", "0"]):
        refused = _cli(settings, *args, console=console)
        assert refused.returncode == 2, refused.stderr
        assert "Traceback" not in refused.stderr
        assert (
            f"the database at {db} is at revision {migrate.FIRST_RELEASE} (created before "
            f"migrations), this bot needs {HEAD}: run `wercker-bot migrate --config "
            f"{settings.config_path}`"
        ) in refused.stderr
    with pytest.raises(SystemExit) as stop:  # gunicorn's create_app(): the arbiter stops
        create_app(settings)
    assert stop.value.code == GUNICORN_BOOT_ERROR
    assert "alembic_version" not in _shape(db)  # a refusal changes nothing

    done = _cli(settings, "migrate", console=console)
    assert done.returncode == 0, done.stderr
    assert f"taken as {migrate.FIRST_RELEASE}" in done.stdout
    assert "0002_release_indexes -> 0003_push_ancestors" in done.stdout
    assert done.stdout.splitlines()[-1] == f"{db}: now at {HEAD} (head)"

    # Nothing lost, every index there, at head, the same shape as a new install's.
    assert _rows(db) == before
    with sqlite3.connect(db) as conn:
        indexes = {
            row[1]
            for table in today.tables
            for row in conn.execute(f"PRAGMA index_list({table})").fetchall()
        }
    assert set(LATER_INDEXES) | {"ix_push_ancestors_sha", "ix_logs_attempt"} <= indexes
    assert _version(db) == [HEAD]
    fresh = open_store(tmp_path / "fresh" / "db.sqlite3")
    fresh.engine.dispose()
    assert _shape(db) == _shape(tmp_path / "fresh" / "db.sqlite3")

    # serve's startup check passes, and the old rows are served as they were.
    services = build_services(settings)
    assert services.store.attempt_state(1, 1) == Result.PASSED
    claim = services.store.claim_next("w")
    assert claim is not None and claim.build.sha == "b" * 40
    sql_store(services.store).engine.dispose()

    again = _cli(settings, "migrate", console=False)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_new_install_is_created_at_head_and_needs_no_migrate(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    services = build_services(settings)  # what serve, worker and make run do
    sql_store(services.store).engine.dispose()
    assert _version(settings.db_path) == [HEAD]
    done = _cli(settings, "migrate", console=False)
    assert done.returncode == 0
    assert done.stdout.strip() == f"{settings.db_path}: already at {HEAD} (head), nothing to do"


def test_migrate_on_no_database_creates_one_at_head(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    done = _cli(settings, "migrate")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{settings.db_path}: no database there, created at {HEAD} (head)"
    assert _version(settings.db_path) == [HEAD]


def test_revision_chain_from_empty_builds_todays_schema(tmp_path: Path) -> None:
    """Every revision run from an empty database gives what a new install gets, and the
    chain downgrades back to nothing."""
    db = tmp_path / "chain.sqlite3"
    engine = create_engine(f"sqlite:///{db}")
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    fresh = open_store(tmp_path / "fresh.sqlite3")
    fresh.engine.dispose()
    assert _shape(db) == _shape(tmp_path / "fresh.sqlite3")
    assert _version(db) == [HEAD] == _version(tmp_path / "fresh.sqlite3")
    assert migrate.known_revisions()[:3] == [
        "0001_first_release", "0002_release_indexes", "0003_push_ancestors"
    ]
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
    engine.dispose()
    assert set(_shape(db)) == {"alembic_version"}


def test_database_of_a_newer_bot_is_refused(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    sql_store(build_services(settings).store).engine.dispose()
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099_future'")
    for name in ("worker", "migrate"):
        refused = _cli(settings, name, console=False)
        assert refused.returncode == 2
        assert "is at revision 0099_future, which this bot does not know" in refused.stderr


def test_a_database_that_is_not_ours_is_not_migrated(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    settings.db_path.parent.mkdir(parents=True)
    with sqlite3.connect(settings.db_path) as conn:
        conn.execute("CREATE TABLE builds (id INTEGER PRIMARY KEY)")
    refused = _cli(settings, "migrate", console=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "has no alembic_version table and its tables are not those" in refused.stderr
    with sqlite3.connect(settings.db_path) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert names == {"builds"}


def test_record_push_uses_the_migrated_push_ancestors(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    _old_database(settings, "last-release")
    assert _cli(settings, "migrate", console=False).returncode == 0
    store = sql_store(build_services(settings).store)
    push = NewPush(
        hook_id="7", delivery_id="d3", repo="acme/app", ref="refs/heads/main", branch="main",
        git_tag="", sha="c" * 40, before_sha="b" * 40, message="m", pusher="p",
        html_url="", pipelines=["build"],
    )
    store.record_push(push)
    # The queued build of b (an ancestor the new push proves) is superseded.
    assert store.attempt_state(2, 1) == Result.CANCELED
    store.engine.dispose()
