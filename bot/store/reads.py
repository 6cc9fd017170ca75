"""Read models for the build pages and the API: typed rows (``bot.store.rows``), never
dicts. The web layer turns them into JSON with ``to_json``."""

from __future__ import annotations

from sqlalchemy import Connection, and_, select

from bot.store.db import Part
from bot.store.rows import (
    AttemptDetail,
    AttemptRow,
    BuildDetail,
    BuildRow,
    BuildSummary,
    ImageRow,
    PipelineRow,
    StepRow,
)
from bot.store.schema import attempts, builds, images, pipelines, steps


def _pipelines(conn: Connection, attempt_id: int) -> list[PipelineRow]:
    """An attempt's pipelines in order, each with its steps: main, then after, each phase
    by position."""
    out = []
    for p in conn.execute(
        select(pipelines).where(pipelines.c.attempt_id == attempt_id).order_by(pipelines.c.position)
    ).all():
        step_rows = conn.execute(
            select(steps)
            .where(steps.c.pipeline_id == p.id)
            .order_by(steps.c.phase.desc(), steps.c.position)
        ).all()
        out.append(PipelineRow(**p._mapping, steps=tuple(StepRow.from_row(s) for s in step_rows)))
    return out


def _images(conn: Connection, attempt_id: int) -> list[ImageRow]:
    rows = conn.execute(
        select(images).where(images.c.attempt_id == attempt_id).order_by(images.c.id)
    ).all()
    return [ImageRow.from_row(i) for i in rows]


class SqlReads(Part):
    """``ReadModels`` on the database."""

    def list_builds(self, limit: int = 50) -> list[BuildSummary]:
        """The newest ``limit`` builds, newest first, each with its newest attempt."""
        with self.db.read() as conn:
            rows = conn.execute(select(builds).order_by(builds.c.id.desc()).limit(limit)).all()
            out = []
            for b in rows:
                a = conn.execute(
                    select(attempts)
                    .where(attempts.c.build_id == b.id)
                    .order_by(attempts.c.number.desc())
                ).first()
                attempt = AttemptRow.from_row(a) if a else None
                out.append(BuildSummary.of(BuildRow.from_row(b), attempt))
        return out

    def build_detail(self, build_id: int) -> BuildDetail | None:
        """A build with its attempts (oldest first), their pipelines, steps and images."""
        with self.db.read() as conn:
            b = conn.execute(select(builds).where(builds.c.id == build_id)).first()
            if b is None:
                return None
            details = [
                AttemptDetail.of(
                    AttemptRow.from_row(a), _pipelines(conn, a.id), _images(conn, a.id)
                )
                for a in conn.execute(
                    select(attempts)
                    .where(attempts.c.build_id == build_id)
                    .order_by(attempts.c.number)
                ).all()
            ]
        return BuildDetail.of(BuildRow.from_row(b), details)

    def attempt_state(self, build_id: int, number: int) -> str | None:
        """The state of attempt ``number`` of build ``build_id``, or ``None``."""
        with self.db.read() as conn:
            row = conn.execute(
                select(attempts.c.state).where(
                    and_(attempts.c.build_id == build_id, attempts.c.number == number)
                )
            ).first()
        return str(row.state) if row else None
