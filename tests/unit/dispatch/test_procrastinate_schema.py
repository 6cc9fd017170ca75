"""procrastinate's schema as an Alembic revision (``m0004_procrastinate``): every migration
file procrastinate ships is accounted for, it is created on PostgreSQL only, and it
downgrades and upgrades again."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, inspect, text

from bot.dispatch.procrastinate import ProcrastinateDispatcher
from bot.store.migrations import SCRIPT_LOCATION
from bot.store.migrations.versions import m0004_procrastinate as revision
from bot.store.schema import metadata
from tests.harness.builds import open_store
from tests.harness.postgres import Postgres

PROCRASTINATE_TABLES = {
    "procrastinate_jobs",
    "procrastinate_events",
    "procrastinate_periodic_defers",
    "procrastinate_workers",
}


def _alembic(engine: Engine, action: str, target: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, action)(config, target)


def _tables(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(inspect(conn).get_table_names())


def test_every_migration_procrastinate_ships_is_wrapped() -> None:
    shipped = revision.shipped_migrations()
    assert shipped, "procrastinate ships its migrations in sql/migrations"
    unwrapped = sorted(set(shipped) - revision.WRAPPED)
    assert unwrapped == [], (
        f"procrastinate ships migrations no revision applies: {unwrapped}; add a revision "
        "whose upgrade() calls m0004_procrastinate.apply_pending(conn), and add them to WRAPPED"
    )


def test_postgresql_at_head_has_procrastinate_with_every_migration_recorded(
    pg_url: str,
) -> None:
    engine = create_engine(pg_url)
    try:
        assert _tables(engine) >= PROCRASTINATE_TABLES
        with engine.begin() as conn:
            recorded = conn.execute(text(f"SELECT name FROM {revision.TRACKING}")).scalars()
            assert set(recorded) == set(revision.shipped_migrations())
            assert revision.apply_pending(conn) == []
    finally:
        engine.dispose()


def test_it_downgrades_and_upgrades_again_on_postgresql(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        _alembic(engine, "downgrade", revision.down_revision)
        left = _tables(engine)
        assert not {t for t in left if t.startswith("procrastinate")}
        assert "builds" in left
        _alembic(engine, "upgrade", "head")
        assert _tables(engine) >= PROCRASTINATE_TABLES
        with engine.begin() as conn:  # the schema works: procrastinate's own function
            conn.execute(
                text("SELECT procrastinate_defer_jobs_v1(ARRAY[]::procrastinate_job_to_defer_v1[])")
            )
    finally:
        engine.dispose()


def test_sqlite_gets_no_procrastinate_schema(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    try:
        _alembic(engine, "upgrade", "head")
        tables = _tables(engine)
        assert "builds" in tables
        assert not {t for t in tables if t.startswith("procrastinate")}
    finally:
        engine.dispose()


def test_apply_schema_completes_a_database_made_by_create_all(postgres: Postgres) -> None:
    """What ``migrate.create_if_empty`` must call on PostgreSQL after ``create_all``: the
    same procrastinate schema the chain makes, and jobs can be deferred."""
    name = f"empty{os.getpid()}"
    postgres.admin(f"CREATE DATABASE {name}")
    engine = create_engine(postgres.url(name))
    try:
        with engine.begin() as conn:
            metadata.create_all(conn)
            revision.apply_schema(conn)
        assert _tables(engine) >= PROCRASTINATE_TABLES
        store = open_store(postgres.url(name))
        dispatcher = ProcrastinateDispatcher(store, postgres.url(name), lost_after=5, reap_every=5)
        try:
            dispatcher.kick("acme/app@main")
            dispatcher.kick("acme/app@main")
        finally:
            dispatcher.close()
            store.close()
        with engine.connect() as conn:
            locks = conn.execute(text("SELECT lock FROM procrastinate_jobs")).scalars().all()
        assert locks == ["acme/app@main"]
    finally:
        engine.dispose()
        postgres.drop_database(name)
