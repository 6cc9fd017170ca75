"""``wercker-bot serve`` against slow clients (finding 10): the real command as a subprocess.

A slow-loris client opens many connections, sends part of a request and stalls. The server
must hold them as sockets, not threads (the previous threaded server spent one thread per
connection: 150 stalled connections, 154 threads), keep answering everyone else, and close
a stalled connection once it has been silent for the read timeout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.harness.registry import die_with_parent, free_port, wait_until

SLOW_CLIENTS = 150
# The server's own threads: handler pool (8), main, one build worker, recovery.
THREAD_BOUND = 30
PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@dataclass
class Serve:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def threads(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
        raise AssertionError("no Threads: line")

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


def start_serve(tmp: Path, *extra: str) -> Serve:
    port = free_port()
    config = tmp / "bot.toml"
    config.write_text(
        f"""
data_dir = "{tmp / "data"}"
workers = 1
[github]
webhook_secret = "serve-limits-secret"
[runner]
kind = "local"
"""
    )
    log = tmp / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("wercker-bot")),
                "serve",
                "--config",
                str(config),
                "--port",
                str(port),
                *extra,
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
    serve = Serve(f"http://127.0.0.1:{port}", port, proc, log)

    def healthy() -> bool:
        assert proc.poll() is None, serve.output()
        return requests.get(f"{serve.url}/healthz", timeout=1).status_code == 200

    try:
        wait_until(healthy, "wercker-bot serve", timeout=30)
    except BaseException:
        stop(serve)
        raise AssertionError(f"serve did not come up: {serve.output()}") from None
    return serve


def stop(serve: Serve) -> None:
    if serve.proc.poll() is None:
        serve.proc.terminate()
        try:
            serve.proc.wait(15)
        except subprocess.TimeoutExpired:
            serve.proc.kill()
            serve.proc.wait()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    running = start_serve(tmp_path)
    try:
        yield running
    finally:
        stop(running)


@contextlib.contextmanager
def slow_loris(port: int, count: int) -> Iterator[list[socket.socket]]:
    """``count`` connections, each with a partial request sent and then nothing more."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(PARTIAL_REQUEST)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_stalled_connections_hold_sockets_not_threads(serve: Serve) -> None:
    idle = serve.threads()
    with slow_loris(serve.port, SLOW_CLIENTS):
        time.sleep(1.5)  # every connection accepted and its partial request read
        under_attack = serve.threads()
        started = time.monotonic()
        resp = requests.get(f"{serve.url}/healthz", timeout=5)
        took = time.monotonic() - started
        assert resp.status_code == 200 and resp.json()["ok"] is True
        assert took < 3.0, f"/healthz took {took:.1f} s under {SLOW_CLIENTS} stalled clients"
        assert under_attack < THREAD_BOUND, (
            f"{under_attack} threads with {SLOW_CLIENTS} stalled clients (idle: {idle})"
        )
        assert under_attack <= idle + 2, (idle, under_attack)
    assert serve.proc.poll() is None, serve.output()


def test_stalled_connection_is_closed_after_the_read_timeout(tmp_path: Path) -> None:
    read_timeout = 2
    serve = start_serve(tmp_path, "--read-timeout", str(read_timeout))
    try:
        with slow_loris(serve.port, 3) as socks:
            started = time.monotonic()
            for sock in socks:
                sock.settimeout(read_timeout + 8)
                try:
                    data = sock.recv(4096)
                except ConnectionResetError:
                    data = b""
                except TimeoutError:
                    raise AssertionError("a stalled connection was never closed") from None
                # Closed without an answer: there was no complete request to answer.
                assert data == b"", data[:200]
            took = time.monotonic() - started
            # The sweep looks every second or so: closed after the timeout, not long after.
            assert read_timeout - 0.5 <= took <= read_timeout + 3, took
        resp = requests.get(f"{serve.url}/healthz", timeout=5)
        assert resp.status_code == 200
        assert resp.headers.get("Server") == "wercker-bot"  # no server name and version
    finally:
        stop(serve)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_serve_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    serve = start_serve(tmp_path)
    try:
        with slow_loris(serve.port, 5):  # open connections do not hold the shutdown up
            os.kill(serve.proc.pid, sig)
            assert serve.proc.wait(15) == 0, serve.output()
        assert "serving on http://127.0.0.1:" in serve.output()
        assert "Traceback" not in serve.output(), serve.output()
    finally:
        stop(serve)


# serve's own loop around a deliberately slow app: a request in flight when SIGTERM comes
SLOW_APP_SERVER = """
import sys, time
from waitress.server import create_server
from bot.cli import _serve_until_signal

def slow(environ, start_response):
    time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"answered after the signal\\n" * 5000]

server = create_server(slow, host="127.0.0.1", port=int(sys.argv[1]), threads=2)
print("ready", flush=True)
_serve_until_signal(server)
print("stopped", flush=True)
"""


def test_a_request_in_flight_at_sigterm_is_still_answered() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_APP_SERVER, str(port)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=die_with_parent,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        answer: dict[str, object] = {}

        def get() -> None:
            try:
                resp = requests.get(f"http://127.0.0.1:{port}/", timeout=10)
                answer["status"], answer["body"] = resp.status_code, resp.content
            except requests.RequestException as err:
                answer["error"] = err

        client = threading.Thread(target=get)
        client.start()
        time.sleep(0.4)  # the request is in the slow app now
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        client.join(10)
        assert answer.get("status") == 200, answer
        assert answer["body"] == b"answered after the signal\n" * 5000
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
