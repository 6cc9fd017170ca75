"""Webhook intake benchmark, printed as a table (not a test).

The ``Procfile``'s web command, ``gunicorn --bind … --threads 8 'bot.app:create_app()'``,
with a temp config (``WERCKER_BOT_CONFIG``), takes a burst of signed pushes from client
threads (each delivery on its own connection, as GitHub sends them). The peer, measured in
the same run under the same gunicorn command, is a bare Flask endpoint doing what no intake
can skip: the HMAC check, the JSON parse and a 202 (``bare_app`` below).

Targets: the bot's p99 under 50 ms, and its throughput at least 0.7x the bare endpoint's,
with every acknowledged push found in the store afterwards (read back, after gunicorn has
stopped on SIGTERM, from the ``deliveries`` table with SQLAlchemy, so any store URL works).

The pushes go to 3 repositories x 10 branches; each push's ``before`` is the previous push
of its branch, so intake also supersedes queued builds as it would in real life.

Each case runs ``--rounds`` bursts (default 3), alternating peer and bot, each on a fresh
gunicorn; the table pools them (p50 and p99 over all requests, req/s over the bursts' time).
It also shows the CPU time gunicorn's processes spent per request during the bursts (from
Linux's ``/proc``): unlike req/s, it barely moves when other processes load the machine, so
it tells a change in the bot's cost from a change in the load.

Stores: ``--store sqlite`` (the embedded SQLite file in a temp ``data_dir``), ``--store
postgres`` (a private PostgreSQL server started for the run with tests/harness/postgres.py's
helpers, migrated, stopped afterwards; when PostgreSQL is not installed, its table is
skipped with the reason printed) or ``both`` (the default: one table each), or
``--store-url postgresql+psycopg://…`` for a database of your own (it may hold other rows:
this run's deliveries have their own ids).

Run: ``.venv/bin/python bench/intake.py [--store both] [--pushes 200] [--clients 16]
[--rounds 3] [--store-url …]``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tables import table  # bench/tables.py: scripts run with bench/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

P99_TARGET_MS = 50.0
RATIO_TARGET = 0.7
SECRET = "bench-intake-secret"
REPOS = ("acme/app0", "acme/app1", "acme/app2")
BRANCHES = 10


def bare_app() -> Any:
    """The peer: HMAC over the raw body, JSON parse, 202 (gunicorn ``'intake:bare_app()'``)."""
    from flask import Flask, jsonify, request

    app = Flask("bare")
    key = SECRET.encode()

    @app.post("/hooks/github")
    def hook() -> Any:
        body = request.get_data()
        want = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(want, request.headers.get("X-Hub-Signature-256", "")):
            return jsonify(error="bad signature"), 401
        payload = json.loads(body)
        if request.headers.get("X-GitHub-Event") == "ping":
            return jsonify(pong=payload.get("zen", "ok")), 200
        return jsonify(accepted=payload["after"]), 202

    return app


@dataclass
class Run:
    """One burst against one server: per-request latencies and what was acknowledged."""

    latencies_ms: list[float] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)
    """delivery id → build id, for every 202 that named a build."""
    statuses: dict[int, int] = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float | None = None
    """CPU time (user + system) gunicorn's processes spent during the burst (Linux), so
    the cost per request can be compared when other processes load the machine."""


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def deliveries(pushes: int, run_id: str) -> list[tuple[str, bytes]]:
    """``pushes`` (delivery id, JSON body) pairs over ``REPOS`` x ``BRANCHES``, each push's
    ``before`` being the previous push of its branch."""
    from tests.harness.github_fake import ZERO_SHA, push_payload

    last: dict[tuple[str, int], str] = {}
    out = []
    for i in range(pushes):
        repo, branch = REPOS[i % len(REPOS)], (i // len(REPOS)) % BRANCHES
        sha = hashlib.sha1(f"{run_id}-{i}".encode()).hexdigest()
        before = last.get((repo, branch), ZERO_SHA)
        last[(repo, branch)] = sha
        payload = push_payload(repo, f"refs/heads/b{branch}", sha, before=before)
        out.append((f"{run_id}-{i}", json.dumps(payload).encode()))
    return out


def post(port: int, delivery: str, body: bytes, event: str = "push") -> tuple[int, dict]:
    from tests.harness.github_fake import webhook_headers

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/hooks/github", body, webhook_headers(body, SECRET, event, delivery))
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    try:
        answer = json.loads(data)
    except ValueError:
        answer = {}
    return resp.status, answer if isinstance(answer, dict) else {}


def burst(port: int, work: list[tuple[str, bytes]], clients: int) -> Run:
    """Sends ``work`` from ``clients`` threads at once; times each request."""
    run = Run()
    lock = threading.Lock()
    items = iter(work)
    start = threading.Barrier(clients + 1)

    def client() -> None:
        start.wait()
        while True:
            with lock:
                item = next(items, None)
            if item is None:
                return
            began = time.perf_counter()
            status, answer = post(port, *item)
            took = (time.perf_counter() - began) * 1000
            with lock:
                run.latencies_ms.append(took)
                run.statuses[status] = run.statuses.get(status, 0) + 1
                if status == 202 and isinstance(answer.get("build"), int):
                    run.acked[item[0]] = answer["build"]

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - began
    return run


def process_cpu(root: int) -> float | None:
    """CPU seconds (user + system) used so far by ``root`` and its children, from Linux's
    ``/proc``; ``None`` elsewhere."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, found = 0.0, False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the command's closing parenthesis: state, ppid, … utime (12th), stime.
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # ended meanwhile
        if stat.parent.name == str(root) or fields[1] == str(root):
            total += (int(fields[11]) + int(fields[12])) / tick
            found = True
    return total if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gunicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """The Procfile's web command on ``port`` (one worker, 8 threads); its log to ``log``."""
    argv = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--threads",
        "8",
        app,
    ]
    with log.open("ab") as out:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=out)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 60.0) -> None:
    """Until a signed ping is answered 200 (three, to warm the worker up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").splitlines()[-5:]
            raise SystemExit(f"gunicorn exited with {proc.returncode} before it served: {tail}")
        try:
            if all(post(port, f"warm-{i}", b'{"zen": "hi"}', "ping")[0] == 200 for i in range(3)):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"gunicorn did not answer on port {port} within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM (what a PaaS sends), then the exit code."""
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def serve_and_burst(
    app: str, env: dict[str, str], work: list[tuple[str, bytes]], clients: int, log: Path
) -> Run:
    """One gunicorn for one burst, stopped with SIGTERM afterwards (the bot's intake
    writer drains on the way out)."""
    port = free_port()
    proc = gunicorn(app, port, env, log)
    try:
        wait_ready(proc, port, log)
        cpu_before = process_cpu(proc.pid)
        run = burst(port, work, clients)
        cpu_after = process_cpu(proc.pid)
        if cpu_before is not None and cpu_after is not None:
            run.cpu_seconds = cpu_after - cpu_before
        return run
    finally:
        code = stop(proc)
        if code != 0:
            print(f"({app}: gunicorn exited with {code}; log {log})", file=sys.stderr)


def merged(runs: list[Run]) -> Run:
    """The rounds of one case as one run: all latencies, total time, every ack."""
    out = Run()
    cpu = [run.cpu_seconds for run in runs]
    out.cpu_seconds = None if None in cpu else sum(c or 0.0 for c in cpu)
    for run in runs:
        out.latencies_ms.extend(run.latencies_ms)
        out.acked.update(run.acked)
        for status, n in run.statuses.items():
            out.statuses[status] = out.statuses.get(status, 0) + n
        out.seconds += run.seconds
    return out


def write_config(data_dir: Path, store_url: str | None) -> Path:
    repos = "".join(f'\n[repos."{r}"]\nclone_url = "file:///nowhere"\n' for r in REPOS)
    store = f'\n[store]\nurl = "{store_url}"\n' if store_url else ""
    text = (
        f'data_dir = "{data_dir}"\nbase_url = "http://bot.bench"\n'
        f'\n[github]\nwebhook_secret = "{SECRET}"\n{store}{repos}'
    )
    path = data_dir.parent / "bench-intake.toml"
    path.write_text(text, encoding="utf-8")
    return path


def stored_builds(config: Path, delivery_ids: list[str]) -> dict[str, int]:
    """delivery id → build id, as the store holds them (read with SQLAlchemy Core)."""
    from sqlalchemy import create_engine, select

    from bot.settings import load_settings
    from bot.store.schema import deliveries as table_

    engine = create_engine(load_settings(str(config)).database.url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                select(table_.c.delivery_id, table_.c.build_id).where(
                    table_.c.delivery_id.in_(delivery_ids)
                )
            ).all()
    finally:
        engine.dispose()
    return {str(r.delivery_id): int(r.build_id) for r in rows}


def summary_rows(bot: Run, bare: Run, found: int) -> list[tuple[str, ...]]:
    """(case, p50 ms, p99 ms, req/s, ratio to bare, server CPU ms/req, verdict) rows (the
    CPU "?" where it could not be read); the verdict is the bot's
    p99 against ``P99_TARGET_MS``, its throughput against ``RATIO_TARGET`` x the bare
    endpoint's, and every acknowledged push found in the store (``found``)."""
    rows: list[tuple[str, ...]] = []
    rates = {name: len(r.latencies_ms) / r.seconds for name, r in (("bot", bot), ("bare", bare))}
    for name, run in (("bot", bot), ("bare", bare)):
        n = len(run.latencies_ms)
        p99 = percentile(run.latencies_ms, 99)
        ratio = rates[name] / rates["bare"]
        note = ""
        if name == "bot":
            missed = [
                what
                for what, ok in (
                    (f"p99 >= {P99_TARGET_MS:.0f} ms", p99 < P99_TARGET_MS),
                    (f"< {RATIO_TARGET}x bare", ratio >= RATIO_TARGET),
                    (f"{len(run.acked) - found} acked not stored", found == len(run.acked)),
                )
                if not ok
            ]
            note = f"stored {found}/{len(run.acked)} " + (
                "ok" if not missed else "MISSED: " + ", ".join(missed)
            )
        rows.append(
            (
                CASES[name],
                f"{percentile(run.latencies_ms, 50):.1f}",
                f"{p99:.1f}",
                f"{rates[name]:.0f}",
                f"{ratio:.2f}x",
                "?" if run.cpu_seconds is None else f"{run.cpu_seconds * 1000 / n:.2f}",
                note,
            )
        )
    return rows


CASES = {
    "bot": "bot: gunicorn --threads 8 'bot.app:create_app()'",
    "bare": "peer: bare Flask (HMAC + JSON + 202), same command",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=200)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="bursts per case, alternating")
    parser.add_argument("--store", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--store-url", help="SQLAlchemy URL of the bot's store (overrides --store)")
    args = parser.parse_args(argv)
    if args.store_url:
        return bench_store(args, args.store_url)
    if args.store in ("sqlite", "both"):
        bench_store(args, None)
    if args.store in ("postgres", "both"):
        bench_postgres(args)
    return 0


def bench_postgres(args: argparse.Namespace) -> None:
    """The PostgreSQL table, on a private server (the tests' harness) that lives as long as
    the run; without PostgreSQL here, one line saying why the table is skipped."""
    from tests.harness import postgres as pg

    reason = pg._unavailable()  # the same check the PostgreSQL tests skip on
    if reason is not None:
        print(f"(webhook intake, store PostgreSQL: skipped: {reason})", flush=True)
        return
    server, watchdog = pg.start_postgres()
    try:
        pg.migrate_template(server)
        bench_store(args, server.url(server.new_database()))
    finally:
        pg.stop_postgres(server, watchdog)


def bench_store(args: argparse.Namespace, store_url: str | None) -> int:
    """One store's table (``store_url`` None: the embedded SQLite), then its JSON line."""
    bots: list[Run] = []
    bares: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        config = write_config(Path(tmp) / "data", store_url)
        log = Path(tmp) / "gunicorn.log"
        env = {k: v for k, v in os.environ.items() if k != "WEB_CONCURRENCY"}
        env["WERCKER_BOT_CONFIG"] = str(config)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "bench"), str(ROOT)])
        # Rounds alternate peer and bot, so load from elsewhere on the machine hits both.
        for _ in range(args.rounds):
            work = deliveries(args.pushes, uuid.uuid4().hex[:12])
            bares.append(serve_and_burst("intake:bare_app()", env, work, args.clients, log))
            bots.append(serve_and_burst("bot.app:create_app()", env, work, args.clients, log))
        bot, bare = merged(bots), merged(bares)
        stored = stored_builds(config, list(bot.acked))
    found = sum(1 for d, b in bot.acked.items() if stored.get(d) == b)
    store = "PostgreSQL" if (store_url or "").startswith("postgres") else "SQLite"
    print(
        table(
            f"webhook intake: {args.rounds} x {args.pushes} signed pushes from {args.clients} "
            f"clients, store {store} (targets: p99 < {P99_TARGET_MS:.0f} ms, "
            f">= {RATIO_TARGET}x bare req/s, every acknowledged push stored)",
            ("case", "p50 ms", "p99 ms", "req/s", "ratio to bare", "server CPU ms/req", "verdict"),
            summary_rows(bot, bare, found),
        )
    )
    print(
        json.dumps(
            {
                "pushes": args.pushes,
                "clients": args.clients,
                "rounds": args.rounds,
                "store": store,
                "bot_statuses": bot.statuses,
                "bare_statuses": bare.statuses,
                "acked": len(bot.acked),
                "stored": found,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
