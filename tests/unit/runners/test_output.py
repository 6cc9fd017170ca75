"""Step output in whole lines and the step's timers (``bot.runners.output``). Time is a
clock the test moves (``bot.runners.output.time`` replaced), so nothing here sleeps."""

from __future__ import annotations

from collections.abc import Iterable
from types import SimpleNamespace

import pytest

from bot.runners import output
from bot.runners.base import ABORTED, Abort, Timeouts
from bot.runners.output import ABORT_POLL_SECONDS, PARTIAL_SECONDS, OutputRelay, Watchdog


class RecordingLog:
    """A ``bot.logs.Log`` that keeps each call, to see where the relay cut the output."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def info(self, message: str) -> None:
        self.calls.append(("info", message))

    def warn(self, message: str) -> None:
        self.calls.append(("warn", message))

    def output(self, chunk: str) -> None:
        self.calls.append(("output", chunk))

    def progress(self, message: str) -> None:
        self.calls.append(("progress", message))

    def add_secrets(self, values: Iterable[str]) -> None:
        pass

    @property
    def chunks(self) -> list[str]:
        return [text for kind, text in self.calls if kind == "output"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(output, "time", SimpleNamespace(monotonic=fake.monotonic))
    return fake


# -- OutputRelay ---------------------------------------------------------------------------


def test_whole_lines_go_out_together_and_a_partial_line_waits(clock: Clock) -> None:
    log = RecordingLog()
    relay = OutputRelay(log)
    relay.feed(b"one\ntw")
    relay.feed(b"o\nthr")
    assert log.chunks == ["one\n", "two\n"]
    assert relay.partial_since == clock.now
    relay.feed(b"ee\n")
    assert log.chunks == ["one\n", "two\n", "three\n"] and relay.partial_since is None


def test_a_secret_split_across_feeds_reaches_the_log_in_one_piece(clock: Clock) -> None:
    log = RecordingLog()
    relay = OutputRelay(log)
    for piece in (b"token=s3c", b"r3t-va", b"lue\n"):
        relay.feed(piece)
    assert log.chunks == ["token=s3cr3t-value\n"]


def test_a_utf8_character_split_across_feeds_is_decoded_whole(clock: Clock) -> None:
    log = RecordingLog()
    relay = OutputRelay(log)
    data = "héllo €\n".encode()
    relay.feed(data[:2])  # ends inside "é"
    relay.feed(data[2:9])  # ends inside "€"
    relay.feed(data[9:])
    assert log.chunks == ["héllo €\n"]


def test_the_partial_timer_starts_with_the_first_partial_byte_not_the_last(
    clock: Clock,
) -> None:
    relay = OutputRelay(RecordingLog())
    relay.feed(b"...")
    started = clock.now
    clock.now += 0.2
    relay.feed(b"...")
    assert relay.partial_since == started


def test_a_huge_line_is_not_held_back_forever() -> None:
    log = RecordingLog()
    relay = OutputRelay(log)
    relay.feed(b"x" * (64 * 1024))
    assert log.chunks == []
    relay.feed(b"y")
    assert log.chunks == ["x" * (64 * 1024) + "y"] and relay.partial_since is None


def test_warn_shows_the_pending_output_first() -> None:
    log = RecordingLog()
    relay = OutputRelay(log)
    relay.feed(b"Password: ")
    relay.warn("no-response-timeout")
    assert log.calls == [("output", "Password: "), ("warn", "no-response-timeout")]


def test_close_flushes_an_unfinished_character_as_a_replacement() -> None:
    log = RecordingLog()
    relay = OutputRelay(log)
    relay.feed(b"end\xe2\x82")  # the first two bytes of "€"
    relay.close()
    assert log.chunks == ["end\ufffd"]
    relay.close()
    assert log.chunks == ["end\ufffd"]  # nothing twice


# -- Watchdog ------------------------------------------------------------------------------


def watchdog(command: float | None, no_response: float | None) -> tuple[Watchdog, RecordingLog]:
    log = RecordingLog()
    return Watchdog(Timeouts(command, no_response), OutputRelay(log)), log


def test_wait_is_the_cap_without_timeouts(clock: Clock) -> None:
    dog, _ = watchdog(None, None)
    clock.now += 10_000
    assert dog.wait_seconds(5.0) == 5.0 and dog.expired() is None


def test_wait_ends_at_the_nearest_deadline_and_never_goes_negative(clock: Clock) -> None:
    dog, _ = watchdog(10, 4)
    assert dog.wait_seconds(60) == 4
    clock.now += 3
    dog.output(b"tick\n")
    assert dog.wait_seconds(60) == 4  # no-response restarts with output
    clock.now += 4
    dog.output(b"tock\n")
    assert dog.wait_seconds(60) == 3  # command-timeout is nearer now
    clock.now += 100
    assert dog.wait_seconds(60) == 0.0


def test_a_pending_partial_line_shortens_the_wait(clock: Clock) -> None:
    dog, _ = watchdog(100, 100)
    dog.output(b"Continue? ")
    assert dog.wait_seconds(60) == pytest.approx(PARTIAL_SECONDS)


def test_no_response_timeout_counts_from_the_last_output(clock: Clock) -> None:
    dog, _ = watchdog(100, 5)
    clock.now += 4
    dog.output(b"still here\n")
    clock.now += 4.9
    assert dog.expired() is None
    clock.now += 0.1
    assert dog.expired() == "no-response-timeout"


def test_command_timeout_wins_while_output_still_flows(clock: Clock) -> None:
    dog, _ = watchdog(3, 2)
    for _ in range(3):
        clock.now += 1
        dog.output(b"tick\n")
    assert dog.expired() == "command-timeout"


def test_expired_shows_a_partial_line_once_output_pauses(clock: Clock) -> None:
    dog, log = watchdog(None, None)
    dog.output(b"Downloading")
    clock.now += PARTIAL_SECONDS / 2
    assert dog.expired() is None and log.chunks == []
    clock.now += PARTIAL_SECONDS
    assert dog.expired() is None and log.chunks == ["Downloading"]
    assert dog.relay.partial_since is None


def test_an_abort_ends_the_step_like_a_timeout_and_is_looked_at_often(clock: Clock) -> None:
    abort = Abort()
    dog = Watchdog(Timeouts(600, 300, abort=abort), OutputRelay(RecordingLog()))
    assert dog.wait_seconds(10.0) == ABORT_POLL_SECONDS  # not 10 s: it must see the abort
    assert dog.expired() is None and not dog.aborted()
    abort.set("worker restarted", requeue=True)
    assert dog.aborted() and dog.expired() == ABORTED
    clock.now += 10_000  # past both timeouts: the abort still names itself
    assert dog.expired() == ABORTED
    plain, _ = watchdog(600, 300)
    assert plain.wait_seconds(10.0) == 10.0 and not plain.aborted()


def test_an_abort_is_set_once_and_keeps_its_first_reason() -> None:
    abort = Abort()
    abort.set("worker restarted", requeue=True)
    abort.set("canceled by a user")
    assert (abort.is_set(), abort.reason, abort.requeue) == (True, "worker restarted", True)
