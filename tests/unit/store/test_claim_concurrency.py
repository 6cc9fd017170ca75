"""Concurrent claimers (``SqlQueue.claim_next``) on both databases: threads sharing one
store, and processes each with its own (on PostgreSQL, as workers on several hosts would
be). Every queued attempt is claimed exactly once, and no two attempts of one branch ever
run at the same time, while each claimer holds its attempt for a while before finishing.

Each claimer notes when it held an attempt (CLOCK_MONOTONIC, shared by the processes of
one machine) from just after its claim committed to just before its finish commits: a
window inside the time the attempt was ``running`` in the database, so two windows of one
branch that overlap prove two running attempts of that branch."""

from __future__ import annotations

import itertools
import multiprocessing
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable

from sqlalchemy import func, select

from bot.models import Result
from bot.store.schema import attempts
from bot.store.sql import SqlStore
from tests.harness.builds import open_store
from tests.unit.store.helpers import push

BRANCHES = 6
PER_BRANCH = 6
HOLD_SECONDS = 0.01
Held = tuple[int, str, float, float]  # attempt id, branch, held from, held until


def _fill(store: SqlStore) -> None:
    """PER_BRANCH pushes on each of BRANCHES branches, interleaved; none proves another
    older, so all stay queued."""
    for n in range(PER_BRANCH):
        for b in range(BRANCHES):
            store.record_push(push(f"{n * BRANCHES + b + 1:040x}", branch=f"b{b}"))


def _queued(store: SqlStore) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                select(func.count()).select_from(attempts).where(attempts.c.state == "queued")
            ).scalar_one()
        )


def _claim_until_empty(store: SqlStore, name: str, note: Callable[[Held], None]) -> None:
    """Claims, holds, finishes; until nothing is left queued."""
    while True:
        claim = store.claim_next(name)
        if claim is None:
            if _queued(store) == 0:
                return
            time.sleep(0.002)  # every branch with work is busy right now
            continue
        start = time.monotonic()
        time.sleep(HOLD_SECONDS)
        end = time.monotonic()
        note((claim.attempt_id, claim.build.branch, start, end))
        store.finish_attempt(claim.attempt_id, Result.PASSED, "ok")


def _check(held: list[Held]) -> None:
    ids = [h[0] for h in held]
    assert len(ids) == BRANCHES * PER_BRANCH, "every attempt claimed"
    assert len(set(ids)) == len(ids), "no attempt claimed twice"
    by_branch: dict[str, list[Held]] = defaultdict(list)
    for h in held:
        by_branch[h[1]].append(h)
    for branch, windows in by_branch.items():
        windows.sort(key=lambda h: h[2])
        for before, after in itertools.pairwise(windows):
            assert before[3] <= after[2], f"two attempts of {branch} ran at once"
        # One at a time per branch, oldest first (arrival order).
        assert [h[0] for h in windows] == sorted(h[0] for h in windows)


def test_threads_claiming_never_double_claim_nor_run_two_of_a_branch(store: SqlStore) -> None:
    _fill(store)
    held: list[Held] = []
    lock = threading.Lock()

    def note(h: Held) -> None:
        with lock:
            held.append(h)

    threads = [
        threading.Thread(target=_claim_until_empty, args=(store, f"t{i}", note)) for i in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    _check(held)


def _process(url: str, name: str, out: multiprocessing.Queue[Held]) -> None:
    store = open_store(url)
    threads = [
        threading.Thread(target=_claim_until_empty, args=(store, f"{name}-{i}", out.put))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()


def test_processes_claiming_never_double_claim_nor_run_two_of_a_branch(
    db_url: str, store: SqlStore
) -> None:
    _fill(store)
    ctx = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[Held] = ctx.Queue()
    procs = [ctx.Process(target=_process, args=(db_url, f"p{i}", out)) for i in range(3)]
    for p in procs:
        p.start()
    held: list[Held] = []
    deadline = time.monotonic() + 120
    while len(held) < BRANCHES * PER_BRANCH and time.monotonic() < deadline:
        try:
            held.append(out.get(timeout=1))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                break
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    while True:  # anything noted after the count was reached: a double claim
        try:
            held.append(out.get(timeout=0.5))
        except queue.Empty:
            break
    out.close()
    out.join_thread()
    _check(held)
