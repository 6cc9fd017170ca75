"""``wercker-bot``: serve | worker | run DIR | check FILE.

Errors a user can fix are printed as one line and exit non-zero; never a traceback.
"""

from __future__ import annotations

# Only what every command needs is imported here: ``check`` runs on every save in editors and
# pre-commit hooks, and must not pay for the bot (docker, requests, sqlalchemy, waitress...).
# Each other command imports what it needs itself (tests/unit/wercker/test_check_imports.py).
import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bot.errors import WerckerBotError
from bot.web import limits as web_limits

EXIT_FAILED = 1
EXIT_ERRORED = 2


def _setup_logging() -> None:
    import logging

    logging.basicConfig(
        level=os.environ.get("WERCKER_BOT_LOG_LEVEL", "INFO"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _wait_for_signal(on_signal: Callable[[], None] | None = None) -> str:
    """Waits for SIGINT or SIGTERM and returns its name; ``on_signal`` runs in the handler.
    A second signal gets the default action: Ctrl-C twice ends the process at once."""
    import signal
    import threading

    stop = threading.Event()
    got: list[str] = []

    def handler(signum: int, _frame: object) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        got.append(signal.Signals(signum).name)
        if on_signal is not None:
            on_signal()
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler)
    while not stop.is_set():
        stop.wait(1.0)
    return got[0]


def cmd_serve(args: argparse.Namespace) -> int:
    """Web app and embedded workers in one process, until Ctrl-C or SIGTERM (exit 0). On
    the signal the workers claim nothing more; once the web server has stopped, running
    builds get the rest of ``shutdown_grace`` (``WorkerPool.shutdown``)."""
    import logging

    from bot.app import MAX_BODY, create_app
    from bot.settings import load_settings
    from bot.web import serve as web_serve
    from bot.wiring import build_web_services
    from bot.worker import WorkerPool

    settings = load_settings(args.config)
    services = build_web_services(settings)
    app = create_app(services=services)
    # Bound before the workers start: a port in use fails the command before any build runs.
    server = web_serve.make_server(
        app,
        host=args.host,
        port=args.port,
        max_body=MAX_BODY,
        read_timeout=max(1, int(args.read_timeout)),
        request_deadline=max(1, int(args.request_deadline)),
    )
    pool = WorkerPool(services, settings.workers)
    pool.start()
    logging.getLogger("wercker-bot").info(
        "serving on http://%s:%d (%d workers, data in %s)",
        args.host,
        int(server.effective_port),  # waitress keeps it as given: a string
        settings.workers,
        settings.data_dir,
    )
    web_serve.serve_until_signal(server, on_stop=pool.stop_claiming)
    pool.shutdown(settings.shutdown_grace)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Workers only, until Ctrl-C or SIGTERM (exit 0): then no new claims, running builds
    get ``shutdown_grace`` seconds, the rest are stopped and queued again."""
    import logging

    from bot.settings import load_settings
    from bot.wiring import build_services
    from bot.worker import WorkerPool

    settings = load_settings(args.config)
    pool = WorkerPool(build_services(settings), max(1, settings.workers))
    pool.start()
    log = logging.getLogger("wercker-bot")
    log.info("worker running (%d threads)", pool.count)
    name = _wait_for_signal(on_signal=pool.stop_claiming)
    log.warning("%s: shutting down (grace %g s)", name, settings.shutdown_grace)
    pool.shutdown(settings.shutdown_grace)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    """Brings the store's database to the schema this bot needs, and says what it did."""
    from bot.settings import load_settings
    from bot.store.migrate import upgrade
    from bot.wiring import migration_store

    settings = load_settings(args.config)
    store = migration_store(settings)
    try:
        for line in upgrade(store):
            print(line)
    finally:
        store.engine.dispose()
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from bot.wercker.lint import check_file, problems_to_json

    path = Path(args.file)
    if path.is_dir():
        from bot.wercker.parse import find_file

        found = find_file(path)
        if found is None:
            print(f"{path}: no wercker.yml or .wercker.yml here", file=sys.stderr)
            return EXIT_FAILED
        path = found
    if not path.exists():
        print(f"{path}: no such file", file=sys.stderr)
        return EXIT_FAILED
    from bot.stepsources import is_built_in  # a leaf: no resolver, no GitPython

    problems = check_file(path, args.runner, is_built_in)
    errors = [p for p in problems if p.severity == "error"]
    if args.format == "json":
        import json

        print(json.dumps({"file": str(path), "problems": problems_to_json(problems)}, indent=2))
    else:
        for problem in problems:
            print(problem.format())
        warnings = len(problems) - len(errors)
        print(f"{path}: {len(errors)} error(s), {warnings} warning(s)", file=sys.stderr)
    return EXIT_FAILED if errors else 0


def cmd_run(args: argparse.Namespace) -> int:
    """``wercker-bot run DIR`` (``bot.local_run``): exit 0 passed, 1 failed, 2 errored."""
    from bot.local_run import run_directory

    return run_directory(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wercker-bot", description="Self-hosted push-to-deploy bot for wercker.yml"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser(
        "serve",
        help="webhook receiver, build pages and embedded workers",
        description="Webhook receiver, build pages and embedded workers in one process.",
        epilog=web_limits.LIMITS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--config", help="TOML config (default: $WERCKER_BOT_CONFIG)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--read-timeout",
        type=int,
        default=web_limits.READ_TIMEOUT,
        metavar="SECONDS",
        help="close a connection silent this long, mid-request or idle (default %(default)s)",
    )
    serve.add_argument(
        "--request-deadline",
        type=int,
        default=web_limits.REQUEST_DEADLINE,
        metavar="SECONDS",
        help="answer 408 and close a connection whose request has not wholly arrived this"
        " long after its first byte, however slowly it trickles (default %(default)s)",
    )
    serve.set_defaults(func=cmd_serve)
    worker = sub.add_parser("worker", help="workers only (Procfile worker:)")
    worker.add_argument("--config")
    worker.set_defaults(func=cmd_worker)
    migrate = sub.add_parser(
        "migrate", help="bring the database to the schema this bot needs (serve/worker ask)"
    )
    migrate.add_argument("--config")
    migrate.set_defaults(func=cmd_migrate)
    run = sub.add_parser("run", help="run a local checkout's wercker.yml and print the log")
    run.add_argument("dir")
    run.add_argument(
        "--pipeline", nargs="+", action="extend", metavar="NAME",
        help="pipelines to run, in order (default: build then deploy)",
    )
    run.add_argument("--branch", help="branch name (default: the checkout's)")
    run.add_argument("--repo", help="owner/name, to take env and secrets from the config")
    run.add_argument("--deploy-target", help="deploy target (named step list) to run")
    run.add_argument("--runner", choices=["auto", "local", "local-unsafe", "docker"])
    run.add_argument("--config")
    run.set_defaults(func=cmd_run)
    check = sub.add_parser("check", help="lint a wercker.yml")
    check.add_argument("file")
    check.add_argument("--format", choices=["text", "json"], default="text")
    check.add_argument("--runner", choices=["local", "local-unsafe", "docker"], default=None)
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.func is not cmd_check:  # check only prints: it need not import logging
        _setup_logging()
    try:
        code: int = args.func(args)
        return code
    except WerckerBotError as err:
        print(f"wercker-bot: {err}", file=sys.stderr)
        return EXIT_ERRORED
    except OSError as err:  # a path the user gave: say which, without a traceback
        print(f"wercker-bot: {err.strerror or err}: {err.filename or ''}", file=sys.stderr)
        return EXIT_ERRORED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
