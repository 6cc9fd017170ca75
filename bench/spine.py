"""Benchmarks of the spine, printed as tables (not tests):

1. webhook acknowledgement latency (p50/p99) under a burst of 200 signed pushes, against a
   bare Flask endpoint served by the same server (werkzeug, threaded) in the same run;
2. time from webhook to the final ``deploy`` status for a small repository (local runner,
   daemonless push to a local registry, GitHub statuses fake).

Run: ``.venv/bin/python bench/spine.py`` (``make bench`` runs every benchmark).
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tables import table  # bench/tables.py: scripts run with bench/ on sys.path

from bot.app import create_app
from bot.settings import parse_settings
from bot.wiring import build_services
from bot.worker import WorkerPool
from tests.harness.github_fake import GitHubFake, push_payload, webhook_headers
from tests.harness.gitrepo import make_remote
from tests.harness.images import push_busybox
from tests.harness.registry import start_registry

SECRET = "bench-secret-value"
BURST = 200
CONCURRENCY = 16


def serve(app: Flask) -> tuple[str, Callable[[], None]]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{server.server_port}", server.shutdown


def bare_app() -> Flask:
    app = Flask("bare")

    @app.post("/hooks/github")
    def hook():  # type: ignore[no-untyped-def]
        request.get_data()
        return jsonify(ok=True), 202

    return app


def burst(url: str, bodies: list[bytes]) -> list[float]:
    session_local = threading.local()

    def one(i: int) -> float:
        session = getattr(session_local, "s", None) or requests.Session()
        session_local.s = session
        body = bodies[i]
        headers = webhook_headers(body, SECRET, delivery=f"burst-{i}")
        started = time.perf_counter()
        resp = session.post(f"{url}/hooks/github", data=body, headers=headers, timeout=30)
        took = time.perf_counter() - started
        assert resp.status_code == 202, resp.text
        return took

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        return list(pool.map(one, range(len(bodies))))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def bench_webhooks(tmp: Path, rounds: int = 3) -> list[tuple[str, str, str, str]]:
    bodies = [
        json.dumps(push_payload("acme/app", f"refs/heads/b{i % 20}", f"{i + 1:040x}")).encode()
        for i in range(BURST)
    ]
    results: dict[str, list[float]] = {"bare Flask endpoint": [], "wercker-bot intake": []}
    for r in range(rounds):
        # A fresh store per round, so every push is a new build (no redelivery short-cuts).
        settings = parse_settings(
            {
                "data_dir": str(tmp / f"data-{r}"),
                "workers": 0,
                "github": {"webhook_secret": SECRET},
                "repos": {"acme/app": {"clone_url": "file:///nowhere"}},
            },
            {},
            base_dir=tmp,
        )
        services = build_services(settings)
        for name, app in (
            ("bare Flask endpoint", bare_app()),
            ("wercker-bot intake", create_app(services=services)),
        ):
            url, stop = serve(app)
            results[name].extend(burst(url, bodies))
            stop()
        stored = len(services.store.list_builds(1000))
        assert stored == BURST, f"{stored} builds stored for {BURST} pushes"
    rows = [
        (
            name,
            f"{pct(t, 0.5) * 1000:.1f}",
            f"{pct(t, 0.99) * 1000:.1f}",
            f"{statistics.mean(t) * 1000:.1f}",
        )
        for name, t in results.items()
    ]
    bare, bot = results.values()
    rows.append(
        (
            "ratio (bot / bare)",
            f"{pct(bot, 0.5) / pct(bare, 0.5):.2f}×",
            f"{pct(bot, 0.99) / pct(bare, 0.99):.2f}×",
            f"{statistics.mean(bot) / statistics.mean(bare):.2f}×",
        )
    )
    return rows


def bench_deploy(tmp: Path) -> list[tuple[str, str]]:
    registry = start_registry(tmp / "registry", "plain")
    github = GitHubFake().start()
    try:
        box = push_busybox(registry, tmp / "busybox")
        remote = make_remote(tmp / "git")
        sha = remote.commit(
            {
                "app.txt": "hello\n",
                "wercker.yml": f"""box: {box}
build:
  steps:
    - script:
        name: build
        code: cp app.txt "$WERCKER_OUTPUT_DIR/"
deploy:
  steps:
    - internal/docker-push:
        repository: {registry.host}/acme/app
        cmd: cat /pipeline/source/app.txt
""",
            }
        )
        settings = parse_settings(
            {
                "data_dir": str(tmp / "deploy-data"),
                "workers": 1,
                "base_url": "http://bot.bench",
                "github": {"webhook_secret": SECRET, "api_url": github.url, "token": "t" * 20},
                "runner": {"kind": "local"},
                "repos": {"acme/app": {"clone_url": remote.url}},
            },
            {},
            base_dir=tmp,
        )
        services = build_services(settings)
        pool = WorkerPool(services, 1)
        pool.start()
        url, stop = serve(create_app(services=services))
        body = json.dumps(push_payload("acme/app", "refs/heads/main", sha)).encode()
        started = time.perf_counter()
        resp = requests.post(
            f"{url}/hooks/github",
            data=body,
            headers=webhook_headers(body, SECRET, delivery="deploy-1"),
            timeout=10,
        )
        acked = time.perf_counter() - started
        assert resp.status_code == 202
        github.wait_for(
            lambda: github.final_states("acme/app", sha).get("wercker-bot/deploy") == "success",
            timeout=120,
        )
        total = time.perf_counter() - started
        stop()
        pool.stop()
        return [
            ("webhook acknowledged", f"{acked * 1000:.0f} ms"),
            ("final deploy status posted", f"{total:.2f} s"),
        ]
    finally:
        github.stop()
        registry.stop()


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        print(
            table(
                f"Webhook acknowledgement, burst of {BURST} signed pushes, "
                f"{CONCURRENCY} concurrent clients (ms)",
                ("endpoint", "p50", "p99", "mean"),
                bench_webhooks(tmp),
            )
        )
        print(
            table(
                "Webhook to final deploy status, small repository (local runner)",
                ("milestone", "time"),
                bench_deploy(tmp),
            )
        )


if __name__ == "__main__":
    main()
