"""The ``[store]`` and ``[logs]`` tables: where builds, the queue and build logs live.

``[store] url`` names the database. Without it, a ``DATABASE_URL`` in the environment (what
a PaaS sets) is used, and without that the embedded default, a SQLite file in ``data_dir``.
``sqlite://`` keeps the embedded dispatcher; ``postgresql://`` (``postgres://`` as Heroku
writes it) is the scale-out store, with workers on any number of hosts.

``[logs] archive = "s3"`` copies each finished log to S3-compatible storage; the chunks
stay in the store either way, so a page always has the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bot.errors import ConfigError
from bot.settings_toml import check_keys

SQLITE_FILE = "wercker-bot.sqlite3"
DEFAULT_LOST_AFTER = 30.0
DEFAULT_REAP_EVERY = 10.0

_STORE_KEYS = {"url", "lost_after_seconds", "reap_every_seconds"}
_LOGS_KEYS = {"archive", "bucket", "prefix", "endpoint_url", "region"}
# The one driver the bot ships for PostgreSQL (psycopg 3); a URL naming another is refused.
POSTGRES_DRIVER = "postgresql+psycopg"


@dataclass(frozen=True)
class StoreSettings:
    """``url``: an SQLAlchemy URL, ``sqlite:///<file>`` or ``postgresql+psycopg://…``.
    ``lost_after``: seconds of heartbeat silence after which a worker's attempt is reaped
    ("Worker host lost"); ``reap_every``: how often a worker looks."""

    url: str
    lost_after: float = DEFAULT_LOST_AFTER
    reap_every: float = DEFAULT_REAP_EVERY

    @property
    def is_postgres(self) -> bool:
        return self.url.startswith("postgresql")

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or None on PostgreSQL."""
        if self.is_postgres:
            return None
        return Path(self.url.removeprefix("sqlite:///"))

    @property
    def password(self) -> str:
        """The URL's password as the URL spells it (percent-encoded), or ""."""
        return urlsplit(self.url).password or ""

    @property
    def passwords(self) -> tuple[str, ...]:
        """Every form of the password a message may show (secrets, masked like the
        others): as the URL spells it (``p%40ss``) and decoded (``p@ss``), as the driver
        and PostgreSQL's own errors see it; one entry when both read the same, none
        without a password."""
        raw = self.password
        if not raw:
            return ()
        decoded = unquote(raw)
        return (raw,) if decoded == raw else (raw, decoded)

    def redacted(self) -> str:
        """The URL as logs and errors may show it: the password replaced by ``***``."""
        secret = self.password
        return self.url.replace(f":{secret}@", ":***@", 1) if secret else self.url


@dataclass(frozen=True)
class LogArchiveSettings:
    """``[logs]``: ``archive`` is ``"none"`` or ``"s3"``; for S3, the ``bucket``, a key
    ``prefix``, and optionally an ``endpoint_url`` (MinIO, Ceph, moto) and ``region``.
    Credentials come from boto3's own chain (the environment, an instance role)."""

    archive: str = "none"
    bucket: str = ""
    prefix: str = "wercker-bot/logs/"
    endpoint_url: str | None = None
    region: str | None = None


def parse_store(
    raw: Mapping[str, Any], env: Mapping[str, str], data_dir: Path
) -> StoreSettings:
    """The ``[store]`` table (``raw``), with ``DATABASE_URL`` from ``env`` as the fallback.
    Raises ``ConfigError`` naming the key."""
    check_keys(raw, _STORE_KEYS, "store.")
    where = "store.url"
    given = raw.get("url")
    if given is None and env.get("DATABASE_URL"):
        given, where = env["DATABASE_URL"], "DATABASE_URL"
    url = _database_url(given, where, data_dir)
    return StoreSettings(
        url=url,
        lost_after=_seconds(raw, "lost_after_seconds", DEFAULT_LOST_AFTER),
        reap_every=_seconds(raw, "reap_every_seconds", DEFAULT_REAP_EVERY),
    )


def _database_url(given: object, where: str, data_dir: Path) -> str:
    if given is None:
        return f"sqlite:///{data_dir / SQLITE_FILE}"
    if not isinstance(given, str) or not given.strip():
        raise ConfigError("must be a database URL (sqlite:///… or postgresql://…)", where)
    url = given.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            "must be a database URL (sqlite:///path or postgresql://user@host/db)", where
        )
    if scheme in ("postgres", "postgresql", POSTGRES_DRIVER):
        return f"{POSTGRES_DRIVER}://{rest}"
    if scheme == "sqlite":
        path = Path(rest.removeprefix("/"))
        if not rest.startswith("/") or not rest.removeprefix("/"):
            raise ConfigError(
                "a SQLite URL names a file: sqlite:///relative or sqlite:////absolute", where
            )
        if not path.is_absolute():
            path = data_dir / path
        return f"sqlite:///{path}"
    raise ConfigError(
        f"unsupported database {scheme!r}: use sqlite:///… or postgresql://… "
        f"(the bot ships the psycopg driver)",
        where,
    )


def _seconds(raw: Mapping[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError("must be a number of seconds > 0", f"store.{key}")
    return float(value)


def parse_logs(raw: Mapping[str, Any]) -> LogArchiveSettings:
    """The ``[logs]`` table. Raises ``ConfigError`` naming the key."""
    check_keys(raw, _LOGS_KEYS, "logs.")
    archive = str(raw.get("archive", "none"))
    if archive not in ("none", "s3"):
        raise ConfigError(f"must be \"none\" or \"s3\", not {archive!r}", "logs.archive")
    bucket = str(raw.get("bucket", ""))
    if archive == "s3" and not bucket:
        raise ConfigError("an S3 archive needs a bucket", "logs.bucket")
    endpoint = raw.get("endpoint_url")
    region = raw.get("region")
    return LogArchiveSettings(
        archive=archive,
        bucket=bucket,
        prefix=str(raw.get("prefix", LogArchiveSettings.prefix)),
        endpoint_url=str(endpoint) if endpoint else None,
        region=str(region) if region else None,
    )
