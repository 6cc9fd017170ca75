"""``wercker-bot serve`` against slow clients (finding 10): the real command as a subprocess.

A slow-loris client opens many connections, sends part of a request and stalls. The server
must hold them as sockets, not threads (the previous threaded server spent one thread per
connection: 150 stalled connections, 154 threads), keep answering everyone else, and close
a stalled connection once it has been silent for the read timeout.

Two ways around that, closed too: trickling a byte every second (never silent) is cut off
by the whole-request deadline, and one address cannot hold more than its share of the
connections. Linux routes all of 127.0.0.0/8 to loopback, so 127.0.0.2... are other
clients.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.harness.registry import die_with_parent, free_port, wait_until
from tests.harness.serve import Served
from tests.harness.serve import serve as serve_process

SLOW_CLIENTS = 150
PER_CLIENT = 50  # bot.web.serve.PER_CLIENT_CONNECTIONS
# The server's own threads: handler pool (8), main, one build worker, recovery.
THREAD_BOUND = 30
PARTIAL_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "


@contextlib.contextmanager
def start_serve(tmp: Path, *extra: str) -> Iterator[Served]:
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
    with serve_process(config, port=port, log_path=tmp / "serve.log", extra_args=extra) as s:
        yield s


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Served]:
    with start_serve(tmp_path) as running:
        yield running


@contextlib.contextmanager
def slow_loris(
    port: int, count: int, sources: tuple[str, ...] = ("127.0.0.1",), data: bytes = PARTIAL_REQUEST
) -> Iterator[list[socket.socket]]:
    """``count`` connections from ``sources`` in turn, each with ``data`` (a partial request)
    sent and then nothing more."""
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            source = (sources[i % len(sources)], 0)
            sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=source)
            sock.sendall(data)
            socks.append(sock)
        yield socks
    finally:
        for sock in socks:
            sock.close()


def test_stalled_connections_hold_sockets_not_threads(serve: Served) -> None:
    idle = serve.threads()
    # from three addresses other than /healthz's 127.0.0.1, each at its connection cap
    sources = tuple(f"127.0.0.{n}" for n in range(2, 2 + SLOW_CLIENTS // PER_CLIENT))
    with slow_loris(serve.port, SLOW_CLIENTS, sources):
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
    with start_serve(tmp_path, "--read-timeout", str(read_timeout)) as serve:
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


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_serve_with_exit_0(tmp_path: Path, sig: signal.Signals) -> None:
    with start_serve(tmp_path) as serve:
        with slow_loris(serve.port, 5):  # open connections do not hold the shutdown up
            os.kill(serve.proc.pid, sig)
            assert serve.proc.wait(15) == 0, serve.output()
        assert "serving on http://127.0.0.1:" in serve.output()
        assert "Traceback" not in serve.output(), serve.output()


# serve's own loop around a deliberately slow app: a request in flight when SIGTERM comes
SLOW_APP_SERVER = """
import sys, time
from waitress.server import create_server
from bot.web.serve import serve_until_signal

def slow(environ, start_response):
    time.sleep(1.5)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"answered after the signal\\n" * 5000]

server = create_server(slow, host="127.0.0.1", port=int(sys.argv[1]), threads=2)
print("ready", flush=True)
serve_until_signal(server)
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
        if proc.stdout is not None:
            proc.stdout.close()


def closed_within(sock: socket.socket, seconds: float) -> bytes | None:
    """What the server sent before closing ``sock`` within ``seconds``; None if still open."""
    sock.settimeout(seconds)
    got = b""
    try:
        while chunk := sock.recv(4096):
            got += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        return None
    return got


def healthz_from(port: int, source: str) -> bytes:
    """A /healthz answer to a client at ``source`` (b"" if closed unanswered)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0)) as s:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answer = closed_within(s, 5)
        assert answer is not None, f"a client at {source} was neither answered nor closed"
        return answer


def test_trickling_request_is_cut_off_at_the_request_deadline(tmp_path: Path) -> None:
    deadline = 3  # the read timeout stays 30 s: a byte a second is never silent that long
    with (
        start_serve(tmp_path, "--request-deadline", str(deadline)) as serve,
        contextlib.closing(
            http.client.HTTPConnection("127.0.0.1", serve.port, timeout=5)
        ) as keep_alive,
    ):
        keep_alive.request("GET", "/healthz")
        assert keep_alive.getresponse().read() and keep_alive.sock is not None
        between_requests = keep_alive.sock
        with slow_loris(serve.port, 1) as (sock,):
            started = time.monotonic()
            answer = b""
            while time.monotonic() - started < deadline + 8:
                if select.select([sock], [], [], 1.0)[0]:
                    try:
                        chunk = sock.recv(4096)
                    except ConnectionResetError:
                        break
                    if not chunk:
                        break
                    answer += chunk
                    continue
                try:
                    sock.sendall(b"x")  # one more byte of the X-Slow header, every second
                except (BrokenPipeError, ConnectionResetError):
                    break
            else:
                raise AssertionError(f"a trickling request was still open after {deadline + 8} s")
            took = time.monotonic() - started
        assert deadline - 0.5 <= took <= deadline + 3, took
        assert answer == b"" or answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n"), answer
        # A connection idle between requests has no request under way: the deadline spares it.
        keep_alive.request("GET", "/healthz")
        assert keep_alive.getresponse().status == 200
        assert keep_alive.sock is between_requests  # the same connection, not a new one


def test_one_address_holds_at_most_its_share_of_connections(serve: Served) -> None:
    extra = 10
    with slow_loris(serve.port, PER_CLIENT + extra, data=b"") as socks:
        started = time.monotonic()
        for sock in socks[PER_CLIENT:]:  # closed as soon as accepted
            assert closed_within(sock, 3) == b"", "a connection over the per-client cap"
        assert time.monotonic() - started < 3
        # the first PER_CLIENT are still open (a closed socket would read as ready)
        assert select.select(socks[:PER_CLIENT], [], [], 0.5)[0] == []
        assert healthz_from(serve.port, "127.0.0.1") == b""  # this address is at its cap
        assert healthz_from(serve.port, "127.0.0.2").startswith(b"HTTP/1.1 200 ")  # others not
        for sock in socks[:5]:
            sock.close()

        def admitted_again() -> bool:
            return healthz_from(serve.port, "127.0.0.1").startswith(b"HTTP/1.1 200 ")

        wait_until(admitted_again, "a new connection from 127.0.0.1", timeout=5)
