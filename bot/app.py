"""The Flask app factory. It is handed a ``Services`` (built by ``bot.wiring``) and builds
nothing else. ``create_app()`` with no arguments reads the config from
``$WERCKER_BOT_CONFIG`` and asks the composition root for the web's services (for gunicorn:
``gunicorn 'bot.app:create_app()'``)."""

from __future__ import annotations

import logging
import sys

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import HTTPException

from bot.errors import StoreUnavailable
from bot.services import Services
from bot.settings import Settings, load_settings
from bot.store.migrate import SchemaError

logger = logging.getLogger(__name__)

MAX_BODY = 25 * 1024 * 1024  # GitHub caps payloads at 25 MB

STORE_UNAVAILABLE = "the store is unavailable; redeliver later"
"""The whole 503 body a client gets for ``StoreUnavailable`` (the reason is logged only)."""

GUNICORN_BOOT_ERROR = 3
"""The exit code that makes gunicorn's arbiter stop instead of starting the worker again."""


def _services_or_exit(settings: Settings) -> Services:
    """gunicorn's path (``create_app()``): a database that is not at the head revision stops
    gunicorn with one line saying what to run, not a traceback from every worker."""
    # Imported here: the web layer imports this module (MAX_BODY), and must not pull in
    # everything the composition root builds (pushers, runners).
    from bot.wiring import build_web_services

    try:
        return build_web_services(settings)
    except SchemaError as err:
        print(f"wercker-bot: {err}", file=sys.stderr, flush=True)
        raise SystemExit(GUNICORN_BOOT_ERROR) from None


def create_app(settings: Settings | None = None, services: Services | None = None) -> Flask:
    if services is None:
        services = _services_or_exit(settings or load_settings(None))
    app = Flask(__name__, template_folder="web/templates")
    # One byte over the cap, so the hook can tell a chunked body that is too big from one
    # that is exactly at the cap (werkzeug may cut a chunked stream at this limit).
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY + 1
    app.extensions["wercker_bot"] = services
    # The intake's group commit (one writer thread, started by the first webhook); it
    # drains what is queued when the process exits (``bot.web.intake_writer``).
    from bot.web.intake_writer import IntakeWriter

    app.extensions["wercker_bot_intake"] = IntakeWriter(
        services.store, kick=services.dispatcher.kick
    )

    from bot.web.hooks import bp as hooks_bp
    from bot.web.pages import bp as pages_bp

    app.register_blueprint(hooks_bp)
    app.register_blueprint(pages_bp)

    @app.errorhandler(StoreUnavailable)
    def _store_unavailable(err: StoreUnavailable) -> tuple[Response, int]:
        # A full disk or a locked database is the bot's trouble, and passing: say so, and
        # when to come back, instead of a 500 (the store wraps reads and writes alike). The
        # reason stays in the log: it names the database's user and host, nothing a client
        # needs.
        logger.error("%s %s: %s", request.method, request.path, err)
        resp = jsonify(error=STORE_UNAVAILABLE)
        resp.headers["Retry-After"] = str(StoreUnavailable.retry_after)
        return resp, 503

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException) -> tuple[Response, int]:
        reason = {413: f"body larger than {MAX_BODY // (1024 * 1024)} MB"}.get(
            err.code or 500, err.description or err.name
        )
        return jsonify(error=reason), err.code or 500

    return app
