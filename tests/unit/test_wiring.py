"""The composition root."""

from __future__ import annotations

import stat
from pathlib import Path

from bot.settings import parse_settings
from bot.wiring import build_services


def test_data_dir_is_private_to_the_bot(tmp_path: Path) -> None:
    """Box containers write the bind-mounted cache under data_dir as root: other host users
    must not reach what a build leaves there (setuid files, device nodes)."""
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    settings = parse_settings(
        {"data_dir": str(data), "github": {"webhook_secret": "x" * 16}}, {}, base_dir=tmp_path
    )
    build_services(settings)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
