"""Alembic migrations of the store, read from the installed package (no ``alembic.ini``):
``env.py`` runs on the connection ``bot.store.migrate`` hands it, ``versions/`` holds the
revisions. Run them with ``wercker-bot migrate``."""

from __future__ import annotations

from pathlib import Path

SCRIPT_LOCATION = Path(__file__).resolve().parent
