"""procrastinate's schema (PostgreSQL only): the job queue of the scale-out dispatcher.

procrastinate ships its schema (``schema.sql``, the whole schema of the installed version)
and one SQL file per change since (``sql/migrations``), and leaves tracking what was
applied to its user. This revision tracks it in ``procrastinate_bot_migrations`` (one row
per shipped migration file the database has, by name):

- a database without procrastinate gets the installed ``schema.sql``, and every migration
  file shipped with it is recorded as applied (``schema.sql`` holds them all);
- a later revision, written when a procrastinate upgrade ships a new file, calls
  ``apply_pending(conn)``: the shipped files not recorded yet, in name (version) order.
  On a new database they were recorded by this revision, so nothing is applied twice.

``WRAPPED`` names the files the revisions account for; a test fails when procrastinate ships
one that is not in it (then write the revision that applies it, and add it there).
On SQLite (the embedded dispatcher) this revision does nothing.

Revision ID: 0004_procrastinate
Revises: 0003_push_ancestors
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import op

revision = "0004_procrastinate"
down_revision = "0003_push_ancestors"
branch_labels = None
depends_on = None

TRACKING = "procrastinate_bot_migrations"
# The migration files of procrastinate 3.10.0 (the oldest version pyproject allows).
WRAPPED: frozenset[str] = frozenset(
    {
        "00.00.00_01_initial.sql",
        "00.05.00_01_drop_started_at_column.sql",
        "00.05.00_02_drop_started_at_column.sql",
        "00.05.00_03_drop_procrastinate_version_table.sql",
        "00.06.00_01_fix_procrastinate_fetch_job.sql",
        "00.07.01_01_fix_trigger_status_events_insert.sql",
        "00.08.01_01_add_queueing_lock_column.sql",
        "00.10.00_01_close_fetch_job_race_condition.sql",
        "00.10.00_02_add_defer_job_function.sql",
        "00.11.00_03_add_procrastinate_periodic_defers.sql",
        "00.12.00_01_add_foreign_key_index.sql",
        "00.14.00_01_add_locks_to_periodic_defer.sql",
        "00.15.02_01_fix_procrastinate_defer_periodic_job.sql",
        "00.16.00_01_add_finish_job_and_retry_job_functions.sql",
        "00.17.00_01_add_trigger_on_job_deletion.sql",
        "00.17.00_02_delete_finished_jobs.sql",
        "00.17.00_03_add_checks_to_finish_job.sql",
        "00.17.00_04_add_checks_to_retry_job.sql",
        "00.18.01_01_fix_finish_job_compat_issue.sql",
        "00.19.00_01_add_index_on_procrastinate_jobs.sql",
        "00.22.00_01_add_kwargs_to_defer_periodic_job.sql",
        "00.23.00_01_null_locks_excluded.sql",
        "01.00.00_01_remove_old_finish_job_function.sql",
        "01.01.01_01_job_id_bigint.sql",
        "02.00.03_01_add_job_priority.sql",
        "02.05.00_01_add_periodic_job_priority.sql",
        "02.06.00_01_add_cancel_states.sql",
        "02.08.00_01_add_additional_params_to_retry_job.sql",
        "02.14.01_01_add_indexes_for_fetch_job.sql",
        "03.00.00_01_pre_cancel_notification.sql",
        "03.00.00_50_post_cancel_notification.sql",
        "03.01.00_01_pre_add_heartbeat.sql",
        "03.01.00_50_post_add_heartbeat.sql",
        "03.02.00_01_pre_batch_defer_jobs.sql",
        "03.02.00_50_post_batch_defer_jobs.sql",
        "03.03.00_01_pre_priority_lock_fetch_job.sql",
        "03.04.00_01_pre_add_retry_failed_job_procedure.sql",
        "03.04.00_50_post_add_retry_failed_job_procedure.sql",
    }
)


def shipped_migrations() -> list[str]:
    """The migration files the installed procrastinate ships, by name (version order)."""
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    return sorted(p.name for p in folder.glob("*.sql"))


def _run_script(conn: sa.Connection, script: str) -> None:
    # Several statements in one call: psycopg runs them only without parameters, so the
    # script goes to the driver's cursor, inside the migration's transaction.
    driver = conn.connection.driver_connection
    assert driver is not None
    with driver.cursor() as cur:
        cur.execute(script)


def _tracked(conn: sa.Connection) -> set[str]:
    rows = conn.execute(sa.text(f"SELECT name FROM {TRACKING}")).all()
    return {str(r.name) for r in rows}


def _record(conn: sa.Connection, names: list[str]) -> None:
    if names:
        conn.execute(
            sa.text(f"INSERT INTO {TRACKING} (name) VALUES (:name)"),
            [{"name": n} for n in names],
        )


def apply_schema(conn: sa.Connection) -> None:
    """Creates procrastinate's schema (the installed ``schema.sql``) and the tracking
    table, every shipped migration recorded. For a new PostgreSQL database made without
    the chain (``metadata.create_all`` then a stamp at head)."""
    from procrastinate.schema import SchemaManager

    conn.execute(
        sa.text(
            f"CREATE TABLE IF NOT EXISTS {TRACKING} ("
            "name varchar(200) PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
    )
    if not sa.inspect(conn).has_table("procrastinate_jobs"):
        _run_script(conn, SchemaManager.get_schema())
    _record(conn, sorted(set(shipped_migrations()) - _tracked(conn)))


def apply_pending(conn: sa.Connection) -> list[str]:
    """Applies the shipped migration files not recorded yet, in order; returns them."""
    pending = sorted(set(shipped_migrations()) - _tracked(conn))
    from procrastinate.schema import SchemaManager

    folder = Path(SchemaManager.get_migrations_path())
    for name in pending:
        _run_script(conn, (folder / name).read_text(encoding="utf-8"))
        _record(conn, [name])
    return pending


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    apply_schema(conn)


# Everything procrastinate's schema made, found by name: what later versions add goes too.
_DROP_REST = """
DO $$
DECLARE f record;
BEGIN
  FOR f IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%'
  LOOP
    EXECUTE 'DROP FUNCTION IF EXISTS ' || f.sig || ' CASCADE';
  END LOOP;
  FOR f IN SELECT t.typname FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           WHERE n.nspname = current_schema() AND t.typtype IN ('e', 'c')
             AND t.typname LIKE 'procrastinate\\_%'
  LOOP
    EXECUTE 'DROP TYPE IF EXISTS ' || quote_ident(f.typname) || ' CASCADE';
  END LOOP;
END $$;
"""


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    _run_script(
        conn,
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
        f"procrastinate_jobs, procrastinate_workers, {TRACKING} CASCADE;" + _DROP_REST,
    )
