"""The scale-out scenario's invariants, each a function of an ``Outcome``
(``tests.harness.scale_out_checks``) returning what broke it, with the evidence.

- ``rejected``: the GitHub fake refused no request as GitHub would (422).
- ``refused``: every push was accepted (202 with a build id).
- ``unfinished``: every accepted push has at least one context in the GitHub fake, and each
  of them ended in a final state.
- ``overlap``: no two attempts of one branch ran at once (the store's ``started_at`` /
  ``finished_at``).
- ``newest``: the newest push of every branch passed (store and fake), and its tag names it.
- ``backwards``: no tag ever moved to an older commit, neither in the registry as sampled
  nor in the store's ``images`` rows in the order they were recorded.
- ``killed``: the attempts of the kill -9ed host ended errored, "worker host lost"
  (``WORKER_HOST_LOST``).
- ``jobs``: no procrastinate job is left ``todo`` or ``doing`` (a stalled job of a lost host
  is finished ``failed``, never left holding its branch's lock).
- ``fenced``: the paused host's attempts were reaped (``WORKER_HOST_LOST``) and, after it
  resumed, nothing more was written for them: the attempt rows unchanged, no image recorded
  after the reap (one pushed before the pause is the same commit), no status queued for
  their commits; and its log shows the fence refusing it (a
  heartbeat or a write), so the check saw the paused host come back and try.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from bot.store.drain import WORKER_HOST_LOST as HOST_LOST

if TYPE_CHECKING:
    from tests.harness.scale_out_checks import Outcome


def _row(r: Any) -> str:
    return (
        f"attempt {r.id} (build {r.build_id} #{r.number} {r.repo}@{r.branch} {str(r.sha)[:8]}"
        f" {r.state} {r.description!r} on {r.worker} {r.started_at}..{r.finished_at})"
    )


def refused(o: Outcome) -> list[str]:
    return [
        f"{a.push.repo}@{a.push.branch} #{a.push.index}: {a.status}"
        for a in o.acks
        if a.status != 202 or a.build_id is None
    ] + ([] if len(o.acks) == sum(map(len, o.branches.values())) else ["pushes missing"])


def unfinished(o: Outcome) -> list[str]:
    out = []
    for a in o.acks:
        states = o.final.get((a.push.repo, a.push.sha), {})
        if a.status == 202 and (not states or "pending" in states.values()):
            out.append(
                f"{a.push.repo}@{a.push.branch} #{a.push.index} build {a.build_id}: "
                f"{states or 'no status'}"
            )
    return out


def overlap(o: Outcome) -> list[str]:
    out = []
    by_branch: dict[tuple[str, str], list[Any]] = {}
    for r in o.attempts:
        if r.started_at is not None:
            by_branch.setdefault((r.repo, r.branch), []).append(r)
    for runs in by_branch.values():
        runs.sort(key=lambda r: r.started_at)
        for before, after in itertools.pairwise(runs):
            if before.finished_at is None or after.started_at < before.finished_at:
                out.append(f"{_row(before)} overlaps {_row(after)}")
    return out


def newest(o: Outcome) -> list[str]:
    out = []
    for (repo, branch), pushes in o.branches.items():
        last = pushes[-1]
        tries = [r for r in o.attempts if r.repo == repo and r.sha == last.sha]
        final = o.final.get((repo, last.sha), {})
        tag = o.tags.get((repo, branch), [])
        if not tries or max(tries, key=lambda r: r.number).state != "passed":
            out.append(f"{repo}@{branch} newest {last.sha[:8]}: {[_row(r) for r in tries]}")
        if not final or set(final.values()) != {"success"}:
            out.append(f"{repo}@{branch} newest {last.sha[:8]}: statuses {final}")
        if not tag or tag[-1] != last.sha:
            out.append(f"{repo}@{branch} tag names {tag[-1:] or 'nothing'}, not {last.sha}")
    return out


def _moved_back(history: list[str], index: dict[str, int]) -> list[str]:
    places = [index.get(sha, -1) for sha in history]
    return [
        f"{history[i][:8]} (#{places[i]}) after {history[i - 1][:8]} (#{places[i - 1]})"
        for i in range(1, len(places))
        if places[i] < places[i - 1]
    ]


def backwards(o: Outcome) -> list[str]:
    out = []
    shas = {int(r.id): str(r.sha) for r in o.attempts}
    for (repo, branch), pushes in o.branches.items():
        index = {p.sha: p.index for p in pushes}
        seen = o.tags.get((repo, branch), [])
        out += [f"registry {repo}:{branch}: {m}" for m in _moved_back(seen, index)]
        recorded = [
            shas[int(i.attempt_id)]
            for i in o.images
            if i.repository.endswith(repo) and branch in str(i.tags).split(",")
        ]
        out += [f"images {repo}:{branch}: {m}" for m in _moved_back(recorded, index)]
    return out


def killed(o: Outcome) -> list[str]:
    if not o.killed:
        return ["no attempt was running on the killed host"]
    rows = {int(r.id): r for r in o.attempts}
    return [
        _row(rows[i])
        for i in o.killed
        if (rows[i].state, rows[i].description) != ("errored", HOST_LOST)
    ]


def fenced(o: Outcome) -> list[str]:
    if not any(r.description == HOST_LOST for r in o.paused):
        return [f"no attempt of the paused host was reaped: {[_row(r) for r in o.paused]}"]
    now = {int(r.id): r for r in o.attempts}
    out = [
        f"changed after resuming: {_row(r)} -> {_row(now[int(r.id)])}"
        for r in o.paused
        if tuple(r) != tuple(now[int(r.id)])
    ]
    reaped = {int(r.id): float(r.finished_at) for r in o.paused}
    out += [
        f"image {i.tags} recorded by attempt {i.attempt_id} at {i.created_at}, after its reap"
        f" at {reaped[int(i.attempt_id)]}"
        for i in o.images
        if int(i.attempt_id) in reaped and float(i.created_at) >= reaped[int(i.attempt_id)]
    ]
    out += [
        f"the paused host's log shows no refused write for attempt {r.id}"
        for r in o.paused
        if r.description == HOST_LOST
        and f"attempt {r.id} is no longer owned" not in o.paused_log
        and f"attempt {r.id}: heartbeat refused" not in o.paused_log
    ]
    shas = {str(r.sha) for r in o.paused}
    after = [r for r in o.outbox if r.sha in shas]
    if len(after) != o.paused_outbox:
        out.append(
            f"statuses for the reaped commits: {o.paused_outbox} at resume, now "
            f"{[(r.sha[:8], r.context, r.state, r.description) for r in after]}"
        )
    return out


def rejected(o: Outcome) -> list[str]:
    return o.violations


def jobs(o: Outcome) -> list[str]:
    return [f"job {j.id} ({j.lock}) still {j.status}" for j in o.jobs]


CHECKS = (rejected, refused, unfinished, overlap, newest, backwards, killed, fenced, jobs)


def problems(o: Outcome) -> dict[str, list[str]]:
    """Invariant name -> what broke it (an empty list: it held)."""
    return {check.__name__: check(o) for check in CHECKS}
