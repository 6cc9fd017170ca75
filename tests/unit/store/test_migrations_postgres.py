"""Alembic migrations (``bot/store/migrate.py``) on PostgreSQL: the same revision chain as
SQLite builds today's schema and downgrades back to nothing; a database at an older
revision is refused by ``worker`` until ``wercker-bot migrate`` brings it to head, losing
nothing; a new database is created at head once, however many processes start on it."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import column, create_engine, inspect, select, table

from bot.models import Result
from bot.settings import Settings, load_settings
from bot.store import migrate
from bot.store.migrations import SCRIPT_LOCATION
from bot.store.migrations.versions import m0001_first_release as release
from bot.store.schema import metadata as today
from bot.wiring import build_services
from tests.harness.builds import new_push, open_store, sql_store
from tests.harness.postgres import Postgres
from tests.unit.store.test_migrations import _cli

HEAD = migrate.head_revision()


def _ours(name: str | None, kind: str, _parent: Any) -> bool:
    """The store's own tables (procrastinate's, PostgreSQL only, are its own business)."""
    return not (kind == "table" and (name or "").startswith("procrastinate"))


def _diff(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the database and today's tables."""
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _ours})
        diff = compare_metadata(context, today)
    engine.dispose()
    return list(diff)


def _alembic(url: str, verb: str, target: str) -> None:
    engine = create_engine(url)
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        getattr(command, verb)(config, target)
    engine.dispose()


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        names = set(inspect(conn).get_table_names())
    engine.dispose()
    return names


def test_the_chain_builds_todays_schema_and_downgrades_to_nothing(pg_url: str) -> None:
    # pg_url is a copy of the template, which the harness migrated with the chain.
    assert _diff(pg_url) == []
    _alembic(pg_url, "downgrade", "base")
    assert _tables(pg_url) == {"alembic_version"}
    _alembic(pg_url, "upgrade", "head")
    assert _diff(pg_url) == []
    store = open_store(pg_url)
    assert not store.created  # already at head: left as it is
    migrate.check_schema(store)
    store.close()


def _settings(tmp_path: Path, url: str) -> Settings:
    config = tmp_path / "bot.toml"
    config.write_text(
        f'data_dir = "{tmp_path / "data"}"\n[store]\nurl = "{url}"\n'
        f'[github]\nwebhook_secret = "{"x" * 16}"\n'
    )
    return load_settings(config, {})


def _release_database(postgres: Postgres) -> str:
    """A database as the first release's tables make it (no alembic_version), with a
    finished build and a queued one."""
    name = f"{postgres.new_database()}_old"
    postgres.admin(f"CREATE DATABASE {name}")
    url = postgres.url(name)
    engine = create_engine(url)
    release.metadata.create_all(engine)
    t = release.metadata.tables
    with engine.begin() as conn:
        for i, (sha, state) in enumerate((("a" * 40, "passed"), ("b" * 40, "queued")), 1):
            inserted = conn.execute(
                t["builds"].insert().values(
                    repo="acme/app", ref="refs/heads/main", branch="main", sha=sha,
                    before_sha="0" * 40, pipelines='["build"]', created_at=1000.0 + i,
                )
            ).inserted_primary_key  # fmt: skip
            assert inserted is not None
            build = inserted[0]
            conn.execute(
                t["attempts"]
                .insert()
                .values(build_id=build, number=1, state=state, created_at=1000.0 + i)
            )
    engine.dispose()
    return url


def test_an_older_database_is_refused_then_migrated_without_loss(
    tmp_path: Path, postgres: Postgres
) -> None:
    url = _release_database(postgres)
    settings = _settings(tmp_path, url)
    where = url  # no password: the URL as messages show it
    refused = _cli(settings, "worker", console=False)
    assert refused.returncode == 2
    assert (
        f"the database at {where} is at revision {migrate.FIRST_RELEASE} (created before "
        f"migrations), this bot needs {HEAD}: run `wercker-bot migrate"
    ) in refused.stderr
    assert "alembic_version" not in _tables(url)

    done = _cli(settings, "migrate", console=True)
    assert done.returncode == 0, done.stderr
    assert f"taken as {migrate.FIRST_RELEASE}" in done.stdout
    chain = migrate.known_revisions()
    for down, up in itertools.pairwise(chain):
        assert f"{where}: {down} -> {up}: " in done.stdout
    assert done.stdout.splitlines()[-1] == f"{where}: now at {HEAD} (head)"
    assert _diff(url) == []

    store = sql_store(build_services(settings).store)  # the startup check passes
    assert store.attempt_state(1, 1) == Result.PASSED
    claim = store.claim_next("w")
    assert claim is not None and claim.build.sha == "b" * 40
    # New rows get ids after the old ones (the sequences were kept).
    assert store.record_push(new_push(sha="c" * 40, delivery_id="d3")).build_id == 3
    store.close()
    again = _cli(settings, "migrate", console=False)
    assert again.returncode == 0 and "nothing to do" in again.stdout
    postgres.drop_database(url.rsplit("/", 1)[1])


def test_a_new_database_is_created_once_by_many_openers_at_once(postgres: Postgres) -> None:
    name = f"{postgres.new_database()}_empty"
    postgres.admin(f"CREATE DATABASE {name}")
    url = postgres.url(name)
    openers = 6
    barrier = threading.Barrier(openers)
    created: list[bool] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        barrier.wait()
        try:
            store = open_store(url)
            created.append(store.created)
            store.close()
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(openers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(created) == [False] * (openers - 1) + [True]
    assert _diff(url) == []
    engine = create_engine(url)
    version = table(migrate.VERSION_TABLE, column("version_num")).c.version_num
    with engine.connect() as conn:
        versions = conn.execute(select(version)).scalars().all()
    engine.dispose()
    assert versions == [HEAD]
    # Stamped at head, so it must hold what every revision adds: procrastinate's queue too.
    assert {"procrastinate_jobs", "procrastinate_workers"} <= _tables(url)
    postgres.drop_database(name)
