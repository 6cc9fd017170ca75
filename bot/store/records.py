"""What an attempt writes about itself while it runs: its end, its runner, its pipelines,
steps and pushed images. (Its log is ``bot.store.logs``.)"""

from __future__ import annotations

import time
from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from bot.models import Result
from bot.store.db import Part
from bot.store.schema import attempts, images, pipelines, steps


def error_open_rows(conn: Connection, attempt_id: int, description: str, now: float) -> None:
    """Ends as ``errored`` the attempt's pipelines still queued or running and its steps
    still running, inside the caller's transaction."""
    open_ids = [
        r.id
        for r in conn.execute(
            select(pipelines.c.id).where(
                pipelines.c.attempt_id == attempt_id,
                pipelines.c.state.in_([Result.RUNNING, Result.QUEUED]),
            )
        ).all()
    ]
    conn.execute(
        update(pipelines)
        .where(pipelines.c.id.in_(open_ids))
        .values(state=Result.ERRORED, description=description, finished_at=now)
    )
    conn.execute(
        update(steps)
        .where(
            steps.c.pipeline_id.in_(
                select(pipelines.c.id).where(pipelines.c.attempt_id == attempt_id)
            ),
            steps.c.state == Result.RUNNING,
        )
        .values(state=Result.ERRORED, message=description, finished_at=now)
    )


class SqlRecords(Part):
    """``AttemptRecords`` on the database (but ``append_log``: ``SqlLogs``)."""

    def finish_attempt(self, attempt_id: int, state: Result, description: str) -> None:
        with self.db.tx() as conn:
            conn.execute(
                update(attempts)
                .where(attempts.c.id == attempt_id)
                .values(state=state, description=description, finished_at=time.time())
            )

    def set_attempt_runner(self, attempt_id: int, runner: str) -> None:
        with self.db.tx() as conn:
            conn.execute(update(attempts).where(attempts.c.id == attempt_id).values(runner=runner))

    def start_pipeline(self, attempt_id: int, position: int, name: str) -> int:
        return self.db.insert(
            pipelines,
            attempt_id=attempt_id,
            position=position,
            name=name,
            state=Result.RUNNING,
            started_at=time.time(),
        )

    def add_pipeline(
        self, attempt_id: int, position: int, name: str, state: Result, desc: str
    ) -> None:
        self.db.insert(
            pipelines,
            attempt_id=attempt_id,
            position=position,
            name=name,
            state=state,
            description=desc,
        )

    def finish_pipeline(self, pipeline_id: int, state: Result, description: str) -> None:
        with self.db.tx() as conn:
            conn.execute(
                update(pipelines)
                .where(pipelines.c.id == pipeline_id)
                .values(state=state, description=description, finished_at=time.time())
            )

    def error_open_pipelines(self, attempt_id: int, description: str) -> None:
        """Ends pipeline and step rows an aborted attempt left running."""
        with self.db.tx() as conn:
            error_open_rows(conn, attempt_id, description, time.time())

    def start_step(
        self, pipeline_id: int, position: int, phase: str, step_id: str, name: str
    ) -> int:
        return self.db.insert(
            steps,
            pipeline_id=pipeline_id,
            position=position,
            phase=phase,
            step_id=step_id,
            # A wercker.yml may name a step at any length; PostgreSQL enforces the column's.
            name=name[: steps.c.name.type.length],  # type: ignore[attr-defined]
            state=Result.RUNNING,
            started_at=time.time(),
        )

    def finish_step(
        self, step_row: int, state: Result, exit_code: int | None, message: str
    ) -> None:
        with self.db.tx() as conn:
            conn.execute(
                update(steps)
                .where(steps.c.id == step_row)
                .values(state=state, exit_code=exit_code, message=message, finished_at=time.time())
            )

    def add_image(
        self,
        attempt_id: int,
        pipeline: str,
        registry: str,
        repository: str,
        tags: Sequence[str],
        digest: str,
    ) -> None:
        self.db.insert(
            images,
            attempt_id=attempt_id,
            pipeline=pipeline,
            registry=registry,
            repository=repository,
            tags=",".join(tags),
            digest=digest,
            created_at=time.time(),
        )
