"""Build-log memory benchmark, printed as a table (not a test).

A step that prints without end must not grow the bot's memory: ``bot.buildlog.StoreLog``
keeps at most ``buffer_limit`` (4 MB) waiting for the store and stores at most ``limit``.
Target: the peak RSS a log adds stays under 64 MB ("bounded") whatever the step prints.

Each case runs in its own process and reports its peak RSS (``ru_maxrss``) minus the peak
it had after its imports and setup (the baseline), so only the log's own cost is counted:

- bot: 200 MB of 100-byte lines, in 64 KB chunks, through a real ``OutputRelay`` into a
  real ``StoreLog`` (``limit`` 10 MB) on a real ``SqlStore`` in a temp dir; then ``close()``.
  Bytes stored are read back with ``store.iter_log``.
- bot, failing store: the same with ``append_log`` raising ``StoreUnavailable("database or
  disk is full")`` (what the store raises on a full disk) throughout, and a limit above the
  output (so nothing is cut and all of it hits the buffer); ``close()`` retries for its
  10 s, then gives up.
- peer, same run: the same producer written to a plain file (``open(path, "wb").write``),
  the least any logger can cost. Ratios are against its delta, floored at 1 MB.

Run: ``.venv/bin/python bench/logs.py [--mb 200]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tables import table  # bench/tables.py: scripts run with bench/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 64 * 1024
LINE = b"step output " + b"x" * 87 + b"\n"  # 100 bytes
BOUND_MB = 64.0
PEER_FLOOR_MB = 1.0
BOT_LIMIT = 10 * 1024 * 1024
CASES = {
    "bot": "bot: StoreLog limit 10 MB",
    "failing": "bot: StoreLog, store failing (disk full)",
    "peer": "peer: plain file, same producer",
}


def peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux


def chunks(total: int) -> Iterator[bytes]:
    """``total`` bytes of ``LINE`` repeated, in ``CHUNK``-sized pieces (one small pattern,
    sliced: the producer itself holds no more than a chunk)."""
    pattern = LINE * (CHUNK // len(LINE) + 2)
    sent = 0
    while sent < total:
        start = sent % len(LINE)
        size = min(CHUNK, total - sent)
        yield pattern[start : start + size]
        sent += size


def child(case: str, total: int, workdir: Path) -> dict[str, float]:
    """Runs one case in this process; returns its peak RSS delta and bytes stored."""
    sys.path.insert(0, str(ROOT))
    from bot.buildlog import StoreLog
    from bot.errors import StoreUnavailable
    from bot.masking import Masker
    from bot.reporter import Reporter
    from bot.runners.output import OutputRelay
    from bot.store.sql import SqlStore
    from tests.harness.builds import claimed_attempt

    stored = 0
    if case == "peer":
        path = workdir / "peer.log"
        base = peak_kb()
        started = time.perf_counter()
        with open(path, "wb") as out:
            for data in chunks(total):
                out.write(data)
        took = time.perf_counter() - started
        peak = peak_kb()
        stored = path.stat().st_size
    else:
        store = SqlStore(f"sqlite:///{workdir / 'db'}", Reporter("wb", "http://bot"))
        attempt_id = claimed_attempt(store)
        if case == "failing":

            def full(attempt_id: int, text: str) -> None:
                raise StoreUnavailable("database or disk is full")

            store.append_log = full  # type: ignore[method-assign]
        limit = BOT_LIMIT if case == "bot" else 2 * total
        base = peak_kb()
        started = time.perf_counter()
        log = StoreLog(store, attempt_id, Masker(), limit=limit)
        relay = OutputRelay(log)
        for data in chunks(total):
            relay.feed(data)
        relay.close()
        log.close()
        took = time.perf_counter() - started
        peak = peak_kb()
        stored = sum(len(page.encode()) for page in store.iter_log(attempt_id))
    return {"rss_delta_mb": (peak - base) / 1024, "stored": stored, "seconds": took}


def run_case(case: str, mb: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-logs-") as tmp:
        argv = [sys.executable, __file__, "--child", case, "--mb", str(mb), "--dir", tmp]
        done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        tail = done.stderr.strip().splitlines()[-1:]
        raise SystemExit(f"case {case}: exit {done.returncode}: {tail}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def verdict(delta_mb: float) -> str:
    return "bounded" if delta_mb < BOUND_MB else "UNBOUNDED"


def summary_rows(results: dict[str, dict[str, float]]) -> list[tuple[str, str, str, str, str]]:
    """(case, peak RSS delta MB, bytes stored, ratio to peer, verdict) rows. Ratios are
    against the peer's delta floored at ``PEER_FLOOR_MB``; the verdict is the bot's delta
    against ``BOUND_MB``."""
    peer = max(results["peer"]["rss_delta_mb"], PEER_FLOOR_MB)
    rows = []
    for case in ("bot", "failing", "peer"):
        delta = results[case]["rss_delta_mb"]
        rows.append(
            (
                CASES[case],
                f"{delta:.1f}",
                f"{int(results[case]['stored'])}",
                f"{delta / peer:.2f}x",
                "" if case == "peer" else verdict(delta),
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="MB of step output (default 200)")
    parser.add_argument("--child", choices=sorted(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    total = args.mb * 1024 * 1024
    if args.child:
        print(json.dumps(child(args.child, total, args.dir or Path(os.getcwd()))))
        return

    results = {case: run_case(case, args.mb) for case in ("peer", "bot", "failing")}
    print(
        table(
            f"build log memory: {args.mb} MB of 100-byte lines in 64 KB chunks, one process "
            f"per case (peak RSS over the post-import baseline; bounded: < {BOUND_MB:.0f} MB)",
            ("case", "peak RSS delta MB", "bytes stored", "ratio to peer", "verdict"),
            summary_rows(results),
        )
    )
    print(
        json.dumps(
            {
                "mb": args.mb,
                "bound_mb": BOUND_MB,
                **{case: {k: round(v, 2) for k, v in r.items()} for case, r in results.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
