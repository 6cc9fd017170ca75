import time
from pathlib import Path

from bot.buildlog import StoreLog
from bot.masking import Masker
from bot.store.store import NewPush, Store


def test_a_failing_store_loses_no_log_text(tmp_path: Path) -> None:
    store = Store(tmp_path / "db")
    store.record_push(
        NewPush(
            "1",
            "d",
            "acme/app",
            "refs/heads/main",
            "main",
            "",
            "a" * 40,
            "0" * 40,
            "",
            "",
            "",
            ["build"],
            "wb",
        ),
        "u/{id}",
    )
    claim = store.claim_next("w")
    assert claim is not None
    real = store.append_log
    failures = {"left": 3}

    def flaky(attempt_id: int, text: str) -> None:
        if failures["left"]:
            failures["left"] -= 1
            raise RuntimeError("database is locked")
        real(attempt_id, text)

    store.append_log = flaky  # type: ignore[method-assign]
    log = StoreLog(store, claim.attempt_id, Masker())
    log.output("first\n")
    time.sleep(2.5)  # several flush rounds fail, the thread survives
    log.output("second\n")
    log.close()
    text, _ = store.log_text(claim.attempt_id)
    assert text == "first\nsecond\n"
