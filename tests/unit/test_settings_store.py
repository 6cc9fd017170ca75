"""``bot.settings_store``: the ``[store]`` and ``[logs]`` tables, ``DATABASE_URL``, and the
database password as a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.masking import Masker
from bot.settings import parse_settings
from bot.settings_store import parse_logs, parse_store

DATA = Path("/srv/bot")


def test_the_embedded_default_is_a_sqlite_file_in_data_dir() -> None:
    store = parse_store({}, {}, DATA)
    assert store.url == "sqlite:////srv/bot/wercker-bot.sqlite3"
    assert store.sqlite_path == DATA / "wercker-bot.sqlite3" and not store.is_postgres
    assert (store.lost_after, store.reap_every) == (30.0, 10.0)


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("postgres://bot:pw@db:5432/bot", "postgresql+psycopg://bot:pw@db:5432/bot"),
        ("postgresql://bot@db/bot", "postgresql+psycopg://bot@db/bot"),
        ("postgresql+psycopg://bot@db/bot", "postgresql+psycopg://bot@db/bot"),
        ("sqlite:///rel/x.db", "sqlite:////srv/bot/rel/x.db"),
        ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
    ],
)
def test_urls_are_normalised_to_the_shipped_driver(given: str, url: str) -> None:
    assert parse_store({"url": given}, {}, DATA).url == url


def test_database_url_from_the_environment_is_the_fallback_only() -> None:
    env = {"DATABASE_URL": "postgres://u:secret@h/db"}
    assert parse_store({}, env, DATA).is_postgres
    configured = parse_store({"url": "sqlite:///x.db"}, env, DATA)
    assert not configured.is_postgres  # the config file wins over the environment


@pytest.mark.parametrize(
    ("raw", "env", "where", "text"),
    [
        ({"url": "mysql://h/db"}, {}, "store.url", "unsupported database 'mysql'"),
        ({"url": "db.internal"}, {}, "store.url", "must be a database URL"),
        ({"url": ""}, {}, "store.url", "must be a database URL"),
        ({}, {"DATABASE_URL": "redis://h"}, "DATABASE_URL", "unsupported database"),
        ({"url": "sqlite://"}, {}, "store.url", "names a file"),
        ({"lost_after_seconds": 0}, {}, "store.lost_after_seconds", "> 0"),
        ({"reap_every_seconds": True}, {}, "store.reap_every_seconds", "> 0"),
        ({"uri": "x"}, {}, "store.uri", "unknown key 'uri'"),
    ],
)
def test_bad_store_tables_name_the_key(
    raw: dict[str, object], env: dict[str, str], where: str, text: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_store(raw, env, DATA)
    assert caught.value.key == where and text in str(caught.value)


def test_the_database_password_is_a_secret_and_redacted() -> None:
    settings = parse_settings(
        {"store": {"url": "postgresql://bot:s3cr3t-pw@db/bot"}}, {}, base_dir=DATA
    )
    assert "s3cr3t-pw" in settings.secret_values()
    assert settings.database.redacted() == "postgresql+psycopg://bot:***@db/bot"
    with pytest.raises(ConfigError, match="PostgreSQL"):
        _ = settings.db_path


def test_a_password_with_special_characters_is_masked_in_both_forms() -> None:
    # The URL spells "p@ss:w/rd%21" percent-encoded; the driver and PostgreSQL's errors
    # show it decoded, so both must be secrets.
    settings = parse_settings(
        {"store": {"url": "postgresql://bot:p%40ss%3Aw%2Frd%2521@db/bot"}}, {}, base_dir=DATA
    )
    secrets = settings.secret_values()
    assert "p@ss:w/rd%21" in secrets and "p%40ss%3Aw%2Frd%2521" in secrets
    masker = Masker(secrets)
    decoded = 'connection failed: password "p@ss:w/rd%21" rejected for user "bot"'
    assert "p@ss" not in masker.mask(decoded) and "w/rd" not in masker.mask(decoded)
    assert "%40" not in masker.mask(settings.database.url)
    assert settings.database.redacted() == "postgresql+psycopg://bot:***@db/bot"
    plain = parse_settings(
        {"store": {"url": "postgresql://bot:plain-pw@db/bot"}}, {}, base_dir=DATA
    )
    assert plain.database.passwords == ("plain-pw",)  # one form when both read the same


def test_logs_archive_needs_a_bucket_and_knows_its_keys() -> None:
    assert parse_logs({}).archive == "none"
    s3 = parse_logs({"archive": "s3", "bucket": "b", "endpoint_url": "http://127.0.0.1:9"})
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == ("b", "wercker-bot/logs/", "http://127.0.0.1:9")
    for raw, key in (
        ({"archive": "s3"}, "logs.bucket"),
        ({"archive": "gcs"}, "logs.archive"),
        ({"bucket_name": "b"}, "logs.bucket_name"),
    ):
        with pytest.raises(ConfigError) as caught:
            parse_logs(raw)
        assert caught.value.key == key


def test_shutdown_grace_defaults_to_25_seconds_and_is_checked() -> None:
    assert parse_settings({}, {}, base_dir=DATA).shutdown_grace == 25.0
    assert parse_settings({"shutdown_grace_seconds": 3}, {}, base_dir=DATA).shutdown_grace == 3
    with pytest.raises(ConfigError) as caught:
        parse_settings({"shutdown_grace_seconds": -1}, {}, base_dir=DATA)
    assert caught.value.key == "shutdown_grace_seconds"
