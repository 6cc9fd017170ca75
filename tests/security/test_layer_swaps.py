"""A layer is built from a directory a build wrote (the output dir, the source): what the
build swaps in after the bot listed it is refused, never followed or waited on."""

from __future__ import annotations

import io
import os
import threading
from pathlib import Path

import pytest

from bot.errors import PushError
from bot.pushers.model import LayerDir
from bot.pushers.registry.layers import entries, write_tar
from tests.security.conftest import Canary


def test_a_file_swapped_for_a_fifo_after_listing_does_not_hang_the_push(tmp_path: Path) -> None:
    root = tmp_path / "output"
    root.mkdir()
    (root / "app").write_bytes(b"x" * 10)
    listed = entries(LayerDir(root, "/"))
    (root / "app").unlink()
    os.mkfifo(root / "app")
    outcome: list[BaseException | None] = []

    def work() -> None:
        try:
            write_tar(listed, io.BytesIO())
            outcome.append(None)
        except BaseException as err:  # handed to the test
            outcome.append(err)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(5)
    if thread.is_alive():
        # Unblock the reader so the thread can end, then fail.
        with open(root / "app", "wb") as writer:
            writer.write(b"")
        pytest.fail("the layer builder waited on a fifo the build planted")
    assert isinstance(outcome[0], PushError)
    assert "changed while the layer was built" in str(outcome[0])


def test_a_file_swapped_for_a_link_after_listing_is_not_followed(
    tmp_path: Path, canary: Canary
) -> None:
    root = tmp_path / "output"
    root.mkdir()
    (root / "app").write_text("x" * len(canary.secret))
    listed = entries(LayerDir(root, "/"))
    (root / "app").unlink()
    (root / "app").symlink_to(canary.file)
    out = io.BytesIO()
    with pytest.raises(PushError, match="cannot read"):
        write_tar(listed, out)
    assert canary.secret.encode() not in out.getvalue()


def test_a_layer_root_that_is_a_link_is_refused(tmp_path: Path, canary: Canary) -> None:
    (tmp_path / "output").symlink_to(canary.directory)
    with pytest.raises(PushError):
        entries(LayerDir(tmp_path / "output", "/"))
