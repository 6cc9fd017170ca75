"""An HTTP proxy that injects registry faults, for retry tests.

``FaultProxy(upstream)`` forwards every request to ``upstream`` (``host:port``, plain HTTP)
and rewrites absolute ``Location`` headers back to itself. ``add(method, path_regex, action,
times=1, ...)`` queues a fault for the next ``times`` matching requests:

- ``drop``: read half the body, then close the connection without an answer;
- ``status``: answer ``status`` (with ``headers``/``body``) without forwarding, e.g. 503, or
  429 with ``{"Retry-After": "1"}``;
- ``lose_upload``: answer 404 ``BLOB_UPLOAD_UNKNOWN`` (the upload session is gone);
- ``after``: forward, then replace the upstream answer with ``status`` (the request did land);
- ``delay``: wait ``seconds`` after reading the body, then forward (a slow upload, to
  see which requests are in flight at once);
- ``header``: forward, then rewrite the upstream answer's headers: each of ``headers`` is set
  to its value, or removed when the value is ``None`` (e.g. ``{"Docker-Content-Digest":
  None}`` drops the manifest digest a registry echoes).

``only_with_body=True`` matches only requests that carry a body. ``seen`` lists
(method, path, status) for every request, the injected status for faults and 0 for drops;
``timings`` lists (method, path, has_body, start, end), ``time.monotonic()`` seconds, for
every request the proxy handled; ``max_in_flight(method, pattern)`` reads them.
Bodies sent with ``Transfer-Encoding: chunked`` (streamed uploads) are read whole and
forwarded with a ``Content-Length``; ``chunked`` lists (method, path, body size) for them (a
``drop`` reads a few chunks, then closes).
The fixture ``fault_proxy`` (in ``tests.harness.registry``) fronts ``registry_plain``.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
}


@dataclass
class Fault:
    method: str
    path: re.Pattern[str]
    action: str
    times: int = 1
    status: int = 503
    headers: dict[str, str | None] = field(default_factory=dict)
    body: bytes = b""
    only_with_body: bool = False
    seconds: float = 0.0


class FaultProxy:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.faults: list[Fault] = []
        self.seen: list[tuple[str, str, int]] = []
        self.chunked: list[tuple[str, str, int]] = []
        self.timings: list[tuple[str, str, bool, float, float]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.host = ""

    def add(self, method: str, path: str, action: str, times: int = 1, **kw: Any) -> Fault:
        fault = Fault(method.upper(), re.compile(path), action, times, **kw)
        with self._lock:
            self.faults.append(fault)
        return fault

    def _take(self, method: str, path: str, has_body: bool) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times == 0 or fault.method != method or not fault.path.search(path):
                    continue
                if fault.only_with_body and not has_body:
                    continue
                fault.times -= 1
                return fault
        return None

    def count(self, method: str, pattern: str = "", status: int | None = None) -> int:
        rx = re.compile(pattern)
        return sum(
            1
            for m, p, s in self.seen
            if m == method and rx.search(p) and (status is None or s == status)
        )

    def max_in_flight(self, method: str, pattern: str = "", only_with_body: bool = False) -> int:
        """The most matching requests the proxy was handling at one time (from receiving
        the request line to sending the answer). ``only_with_body``: only requests that
        carried a body."""
        rx = re.compile(pattern)
        spans = [
            (start, end)
            for m, p, has_body, start, end in self.timings
            if m == method and rx.search(p) and (has_body or not only_with_body)
        ]
        events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
        current = best = 0
        for _, step in events:
            current += step
            best = max(best, current)
        return best

    def start(self) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _answer(
                self, status: int, headers: dict[str, str], body: bytes, head: bool = False
            ) -> None:
                self.send_response(status)
                sent_length = False
                for key, value in headers.items():
                    if key.lower() in HOP_HEADERS:
                        continue
                    if key.lower() == "content-length":
                        sent_length = True
                    self.send_header(key, value)
                if not sent_length:
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _read_chunks(self, limit: int | None = None) -> bytes | None:
                """The body, or None when the client went away before its last chunk."""
                parts: list[bytes] = []
                while limit is None or len(parts) < limit:
                    line = self.rfile.readline()
                    if not line:
                        return None
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        break
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(parts)

            def _handle(self) -> None:
                started = time.monotonic()
                self._had_body = False
                try:
                    self._forward()
                finally:
                    span = (self.command, self.path, self._had_body, started, time.monotonic())
                    with proxy._lock:
                        proxy.timings.append(span)

            def _forward(self) -> None:
                method, path = self.command, self.path
                chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
                length = int(self.headers.get("Content-Length") or 0)
                self._had_body = length > 0 or chunked
                fault = proxy._take(method, path, self._had_body)
                if fault is not None and fault.action == "drop":
                    if chunked:
                        self._read_chunks(limit=3)
                    else:
                        self.rfile.read(length // 2)
                    proxy.seen.append((method, path, 0))
                    self.close_connection = True
                    with contextlib.suppress(OSError):
                        self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if chunked:
                    whole = self._read_chunks()
                    if whole is None:  # an aborted stream: nothing to forward
                        proxy.seen.append((method, path, 0))
                        self.close_connection = True
                        return
                    body, length = whole, len(whole)
                    proxy.chunked.append((method, path, length))
                else:
                    body = self.rfile.read(length) if length else b""
                if fault is not None and fault.action in ("status", "lose_upload"):
                    headers = {k: v for k, v in fault.headers.items() if v is not None}
                    status, payload = fault.status, fault.body
                    if fault.action == "lose_upload":
                        status = 404
                        payload = json.dumps(
                            {
                                "errors": [
                                    {
                                        "code": "BLOB_UPLOAD_UNKNOWN",
                                        "message": "blob upload unknown",
                                    }
                                ]
                            }
                        ).encode()
                        headers["Content-Type"] = "application/json"
                    proxy.seen.append((method, path, status))
                    self._answer(status, headers, payload, head=method == "HEAD")
                    return
                if fault is not None and fault.action == "delay":
                    time.sleep(fault.seconds)
                conn = http.client.HTTPConnection(proxy.upstream, timeout=60)
                try:
                    forward = {
                        k: v
                        for k, v in self.headers.items()
                        if k.lower() not in HOP_HEADERS and k.lower() != "host"
                    }
                    forward["Host"] = proxy.upstream
                    if chunked:
                        forward["Content-Length"] = str(length)
                    conn.request(method, path, body=body if length else None, headers=forward)
                    resp = conn.getresponse()
                    payload = resp.read()
                    headers = {k: v for k, v in resp.getheaders()}
                finally:
                    conn.close()
                status = resp.status
                location = headers.get("Location")
                if location:
                    headers["Location"] = location.replace(
                        f"http://{proxy.upstream}", f"http://{proxy.host}"
                    )
                if fault is not None and fault.action == "after":
                    status, payload = fault.status, fault.body
                    extra = {k: v for k, v in fault.headers.items() if v is not None}
                    headers = {"Content-Type": "text/plain", **extra}
                if fault is not None and fault.action == "header":
                    for key, value in fault.headers.items():
                        headers = {k: v for k, v in headers.items() if k.lower() != key.lower()}
                        if value is not None:
                            headers[key] = value
                proxy.seen.append((method, path, status))
                self._answer(status, headers, payload, head=method == "HEAD")

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        self._server = server
        self.host = f"127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True, name="fault-proxy").start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
