"""``wercker-bot serve``'s HTTP server: waitress, its limits, its access log and its shutdown.

One I/O thread reads and buffers every request before a handler thread sees it, so a slow or
stalled client costs a socket, never a thread. Waitress alone closes only connections that go
*silent* (``channel_timeout``); two small subclasses add what a trickling client needs:

* ``DeadlineChannel`` notes when the first byte of the request being received arrived, and
  ``LimitedServer.maintenance`` (waitress's periodic sweep) answers 408 and closes a
  connection whose request line, headers and body are not all in ``request_deadline``
  seconds after that, however slowly the bytes keep coming.
* ``LimitedServer.accept`` closes, as soon as it is accepted, a connection from a peer
  address that already has ``per_client`` open, so one client cannot take every slot of
  ``CONNECTION_LIMIT``. The address is the TCP peer's: behind a reverse proxy every client
  shares the proxy's, and the cap applies to all of them together.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from waitress.adjustments import Adjustments
from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer

from bot.errors import WerckerBotError
from bot.web.limits import (  # the CLI reads them from there, without importing waitress
    BODY_LIMIT_SLACK,
    CONNECTION_LIMIT,
    PER_CLIENT_CONNECTIONS,
    READ_TIMEOUT,
    REQUEST_DEADLINE,
    SHUTDOWN_GRACE,
    WEB_THREADS,
)

_TIMEOUT_BODY = b"request not received in time\n"
REQUEST_TIMEOUT_ANSWER = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nServer: wercker-bot\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n\r\n%s"
    % (len(_TIMEOUT_BODY), _TIMEOUT_BODY)
)

log = logging.getLogger("wercker-bot.serve")


def access_log(app: Any) -> Any:
    """WSGI middleware: one INFO line per request (client, method, path, status), as the
    previous server wrote; never the query string, which is nobody's business in a log."""
    logger = logging.getLogger("wercker-bot.access")

    def logged(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            logger.info(
                '%s "%s %s" %s',
                environ.get("REMOTE_ADDR", "-"),
                environ.get("REQUEST_METHOD", "-"),
                environ.get("PATH_INFO", ""),
                status.split(" ", 1)[0],
            )
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return logged


class DeadlineChannel(HTTPChannel):
    """Waitress's connection, noting when the request it is receiving began.

    ``received`` (I/O thread) parses bytes into ``self.request`` until a request is complete,
    then sets it back to ``None``; a new parser object means a new request, whose first byte
    is in the data just received."""

    request_began: float | None = None  # time.time() of the unfinished request's first byte
    _timed_request: object = None

    def received(self, data: bytes) -> bool:
        done: bool = super().received(data)
        if self.request is None:
            self.request_began = self._timed_request = None
        elif self.request is not self._timed_request:
            self.request_began, self._timed_request = time.time(), self.request
        return done


class LimitedServer(TcpWSGIServer):
    """Waitress's TCP server with a whole-request deadline and a per-client connection cap."""

    channel_class = DeadlineChannel

    def __init__(
        self, app: Any, adj: Adjustments, *, request_deadline: float, per_client: int
    ) -> None:
        self.request_deadline = request_deadline
        self.per_client = per_client
        self._refused: set[str] = set()  # peers refused since the last sweep (logged once)
        super().__init__(app, map={}, adj=adj)

    def accept(self) -> tuple[Any, Any] | None:
        """``handle_accept`` takes ``None`` as "nothing accepted"."""
        pair: tuple[Any, Any] | None = super().accept()
        if pair is None:
            return None
        conn, addr = pair
        peer = addr[0] if isinstance(addr, tuple) else str(addr)
        open_from_peer = sum(
            1
            for channel in list(self.active_channels.values())
            if isinstance(getattr(channel, "addr", None), tuple) and channel.addr[0] == peer
        )
        if open_from_peer < self.per_client:
            return pair
        conn.close()
        if peer not in self._refused:
            self._refused.add(peer)
            log.warning("%s has %d connections open: closing its new ones", peer, open_from_peer)
        return None

    def maintenance(self, now: float) -> None:
        """Every ``cleanup_interval`` s: waitress closes silent connections; this answers 408
        to, and closes, those whose request is unfinished ``request_deadline`` s after its
        first byte (not while a complete request of theirs is still being handled)."""
        super().maintenance(now)
        self._refused.clear()
        cutoff = now - self.request_deadline
        for channel in list(self.active_channels.values()):
            began = getattr(channel, "request_began", None)
            if (
                began is None
                or began >= cutoff
                or channel.requests
                or channel.will_close
                or channel.close_when_flushed
            ):
                continue
            channel.request_began = None
            log.info(
                "%s: request not received in %g s: 408", channel.addr[0], self.request_deadline
            )
            with channel.outbuf_lock:  # as waitress's own send_continue appends its answer
                channel.outbufs[-1].append(REQUEST_TIMEOUT_ANSWER)
                channel.current_outbuf_count += len(REQUEST_TIMEOUT_ANSWER)
                channel.total_outbufs_len += len(REQUEST_TIMEOUT_ANSWER)
            channel.close_when_flushed = True  # stops reading; closes once the 408 is sent


def make_server(
    app: Any,
    *,
    host: str,
    port: int,
    max_body: int,
    read_timeout: int = READ_TIMEOUT,
    request_deadline: int = REQUEST_DEADLINE,
    per_client: int = PER_CLIENT_CONNECTIONS,
) -> LimitedServer:
    """Binds ``host:port`` (an error here comes before any worker starts) for ``app``."""
    adj = Adjustments(
        host=host,
        port=port,
        threads=WEB_THREADS,
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=read_timeout,
        # how often silent and overdue connections are looked for: a fraction of the timeouts
        cleanup_interval=max(1, min(10, read_timeout // 3, request_deadline // 3)),
        max_request_body_size=max_body + BODY_LIMIT_SLACK,
        # poll(), not select(): select cannot watch descriptors numbered over 1023
        asyncore_use_poll=True,
        ident="wercker-bot",  # no server name and version for a scanner to match
    )
    if len(adj.listen) != 1:
        raise WerckerBotError(f"--host {host} names {len(adj.listen)} addresses: give one")
    return LimitedServer(
        access_log(app), adj, request_deadline=request_deadline, per_client=per_client
    )


def serve_until_signal(server: Any, on_stop: Callable[[], None] | None = None) -> None:
    """Runs waitress's loop in this (the main) thread until SIGINT or SIGTERM, then lets
    requests in flight finish (``SHUTDOWN_GRACE``) and sends what they answered.
    ``on_stop`` runs in the signal handler, first (the workers stop claiming at once).

    Waitress stops on a ``KeyboardInterrupt`` raised into its loop (it then stops its handler
    threads, waiting for those busy with a request); it has no other supported way to stop,
    so both signals raise one, once. A second signal gets the default action: Ctrl-C twice
    ends the process at once."""
    stopping = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        if stopping.is_set():
            return
        stopping.set()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        log.warning("%s: shutting down", signal.Signals(signum).name)
        if on_stop is not None:
            on_stop()
        raise KeyboardInterrupt

    try:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, on_signal)
        server.run()  # returns once the interrupt landed inside it and its threads stopped
    except KeyboardInterrupt:  # landed just outside waitress's own handler
        server.task_dispatcher.shutdown(timeout=SHUTDOWN_GRACE)
    # The loop writes answers out, not the handler threads: run it a little longer, taking
    # no new connections, so requests that finished during the grace are answered.
    server.accepting = False
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and any(
        getattr(channel, "total_outbufs_len", 0) for channel in list(server._map.values())
    ):
        server.asyncore.loop(timeout=0.05, map=server._map, use_poll=True, count=1)
