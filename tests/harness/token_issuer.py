"""A test-only Docker token issuer (distribution ``auth.token``), in a thread, over TLS.

``GET /token?service=…&scope=repository:x:pull,push`` with Basic credentials answers a
RS256 JWT whose header carries ``x5c`` (the signing certificate, which the registry trusts
through ``rootcertbundle``). Known users get the actions they are allowed; anonymous callers
and unknown actions get nothing (the registry then says ``insufficient_scope``); a wrong
password gets 401.

Knobs for tests (change them and put them back): ``ttl`` is the real lifetime written in
``exp`` (distribution accepts ~60 s past it, so a ttl of -57 makes a token that dies ~3 s
after issue); ``advertised_ttl`` is what ``expires_in`` tells the client (None: ``ttl``).
``token_fields`` names the fields the token goes in: both ``token`` and ``access_token`` (the
default, as distribution's own issuer does), or only one of them, e.g. ``("access_token",)``
as OAuth2-style services answer. ``requests`` records every exchange as (username, [scopes]).
"""

from __future__ import annotations

import base64
import json
import secrets
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


@dataclass
class TokenIssuer:
    users: dict[str, str]
    signing_key_pem: bytes
    signing_cert_pem: bytes
    tls_cert: Path
    tls_key: Path
    issuer: str = "test-issuer"
    service: str = "test-registry"
    ttl: float = 300.0
    advertised_ttl: float | None = None
    readers: set[str] = field(default_factory=set)  # users allowed only "pull"
    token_fields: tuple[str, ...] = ("token", "access_token")
    requests: list[tuple[str, list[str]]] = field(default_factory=list)
    port: int = 0
    _server: ThreadingHTTPServer | None = None

    @property
    def realm(self) -> str:
        return f"https://127.0.0.1:{self.port}/token"

    def _x5c(self) -> str:
        cert = x509.load_pem_x509_certificate(self.signing_cert_pem)
        return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()

    def issue(self, username: str, scopes: list[str]) -> dict[str, Any]:
        access = []
        for scope in scopes:
            parts = scope.split(":")
            if len(parts) < 3 or not username:
                continue
            kind, name, actions = parts[0], ":".join(parts[1:-1]), parts[-1].split(",")
            allowed = {"pull"} if username in self.readers else {"pull", "push", "*"}
            granted = [a for a in actions if a in allowed]
            if granted:
                access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.service,
            "sub": username,
            "iat": now - 1,
            "nbf": now - 1 if self.ttl > 0 else now - 120,
            "exp": int(now + self.ttl),
            "jti": secrets.token_hex(8),
            "access": access,
        }
        if self.ttl <= 0:
            claims["iat"] = now - 120
        token = jwt.encode(
            claims, self.signing_key_pem, algorithm="RS256", headers={"x5c": [self._x5c()]}
        )
        advertised = self.advertised_ttl if self.advertised_ttl is not None else self.ttl
        answer: dict[str, Any] = {name: token for name in self.token_fields}
        answer["expires_in"] = int(advertised)
        answer["issued_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return answer

    def start(self) -> None:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != "/token":
                    self._send(404, {"details": "not found"})
                    return
                query = parse_qs(url.query)
                username = ""
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    raw = base64.b64decode(header[6:]).decode()
                    username, _, password = raw.partition(":")
                    if issuer.users.get(username) != password:
                        self._send(401, {"details": "incorrect username or password"})
                        return
                scopes = query.get("scope", [])
                issuer.requests.append((username, scopes))
                self._send(200, issuer.issue(username, scopes))

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True, name="token-issuer").start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
