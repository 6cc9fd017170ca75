"""Registry authentication: which credentials apply, and the Basic/Bearer dance.

``credentials_for`` decides what to send (username/password, gcr.io ``_json_key``, ECR via
boto3, Azure service principal). ``Authenticator`` answers the registry's challenge: Basic
sends the pair to the registry host; Bearer exchanges it at the advertised realm for a token
that covers every scope this push needs (target ``pull,push`` plus ``pull`` of each mount
source), and escalates when a challenge names a new scope.

Credentials only ever go to the registry host and to a realm that passes ``check_realm``.
"""

from __future__ import annotations

import base64
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from bot.errors import RegistryAuthError, RegistryError, RegistryUnavailable
from bot.masking import Masker
from bot.pushers.model import RegistryAuth
from bot.pushers.registry import ecr
from bot.pushers.registry.challenge import Challenge, pick_challenge
from bot.pushers.registry.endpoint import Endpoint
from bot.pushers.registry.errors import (
    describe_body,
    registry_codes,
    safe_url,
)
from bot.pushers.registry.retry import Clock
from bot.pushers.registry.transport import Transport
from bot.pushers.registry.transport_errors import transport_problem
from bot.pushers.target import is_loopback, split_host_port

TOKEN_EXPIRY_MARGIN = 10.0
DEFAULT_TOKEN_TTL = 60.0


@dataclass(frozen=True)
class Credentials:
    """A username/password pair to present (empty username: anonymous)."""

    username: str = ""
    password: str = field(default="", repr=False)

    def __bool__(self) -> bool:
        return bool(self.username or self.password)

    def basic(self) -> str:
        raw = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(raw).decode()


def pull_scope(repository: str) -> str:
    return f"repository:{repository}:pull"


def push_scope(repository: str) -> str:
    return f"repository:{repository}:pull,push"


def is_gcr(host: str) -> bool:
    name = split_host_port(host)[0].lower()
    return name == "gcr.io" or name.endswith(".gcr.io")


def credentials_for(
    endpoint: Endpoint, auth: RegistryAuth, say: Callable[[str], None] | None = None
) -> Credentials:
    """The username/password to present to ``endpoint`` for ``auth``.

    ECR (an ECR host, or any aws-* option) → ``AWS`` + a boto3 login token; Azure (azure-*
    options) → client id/secret; gcr.io with ``_json_key`` → the key with literal ``\\n``
    turned into newlines; otherwise the username/password as given. ``say`` announces the
    retries of an ECR login (the build log).
    """
    reg = ecr.ecr_registry(endpoint.name)
    if reg is not None:
        endpoint_url = endpoint.settings.aws_endpoint_url if endpoint.settings else None
        return Credentials(*ecr.login(reg, auth, endpoint_url, say))
    if auth.azure_client_id or auth.azure_client_secret:
        return Credentials(auth.azure_client_id, auth.azure_client_secret)
    password = auth.password
    if auth.username == "_json_key" and is_gcr(endpoint.name):
        password = password.replace("\\n", "\n")
    return Credentials(auth.username, password)


def _is_private_ip(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private or ip.is_link_local


def check_realm(realm: str, registry_url: str) -> str | None:
    """Why credentials must not be sent to ``realm`` (None when they may).

    Refused: an ``http`` realm for an ``https`` registry; a realm on a loopback, private or
    link-local IP (the cloud metadata service) unless the registry itself is on such an
    address; a DNS realm whose last two labels differ from the registry host's.
    """
    r, g = urlsplit(realm), urlsplit(registry_url)
    if r.scheme not in ("http", "https"):
        return f"the realm {safe_url(realm)!r} is not an http(s) URL"
    if g.scheme == "https" and r.scheme != "https":
        return f"the realm {safe_url(realm)} is plain HTTP while the registry uses HTTPS"
    rhost, ghost = (r.hostname or "").lower(), (g.hostname or "").lower()
    if rhost == ghost:
        return None
    if _is_private_ip(rhost) or is_loopback(rhost):
        if _is_private_ip(ghost) or is_loopback(ghost):
            return None
        return f"the realm {safe_url(realm)} is on a private address"
    if rhost.split(".")[-2:] != ghost.split(".")[-2:]:
        return f"the realm host {rhost} is not in the registry's domain {ghost}"
    return None


@dataclass
class _Token:
    value: str = field(repr=False)
    scopes: tuple[str, ...]
    expires_at: float


class Authenticator:
    """Answers one registry's challenges for one push. Thread-safe.

    ``header(scopes)`` gives the ``Authorization`` header for a request needing ``scopes``
    (``{}`` when the registry asked for nothing). ``unauthorized(resp)`` digests a 401 and
    returns True when retrying the request once may succeed. Token requests go through
    ``transport``; ``clock`` tells when a token has expired.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        credentials: Callable[[], Credentials],
        *,
        transport: Transport,
        secrets: Iterable[str] = (),
        clock: Clock = time.time,
    ) -> None:
        self.endpoint = endpoint
        self._credentials = credentials
        self._creds: Credentials | None = None
        self._transport = transport
        self._clock = clock
        self._secrets = list(secrets)
        # Re-entrant: a token fetch (under the lock, so threads share one exchange) reads
        # the credentials, which also take it.
        self._lock = threading.RLock()
        self._challenge: Challenge | None = None
        self._scopes: list[str] = []
        self._token: _Token | None = None
        self._base_url = ""

    def creds(self) -> Credentials:
        with self._lock:
            if self._creds is None:
                self._creds = self._credentials()
                self._secrets.append(self._creds.password)
            return self._creds

    @property
    def secrets(self) -> list[str]:
        return [s for s in self._secrets if s]

    def start(self, base_url: str, ping: requests.Response) -> None:
        """Records the ``/v2/`` answer: 200 (no auth) or a 401 challenge."""
        self._base_url = base_url
        if ping.status_code == 401:
            self._challenge = pick_challenge(ping.headers.get("WWW-Authenticate", ""))
            if self._challenge is None:
                raise RegistryAuthError(
                    f"{self.endpoint.name} asks for authentication with a scheme we do not "
                    f"support: {ping.headers.get('WWW-Authenticate', '')[:100]!r}",
                    registry=self.endpoint.name,
                    action="auth",
                    http_status=401,
                )

    def want(self, scopes: Iterable[str]) -> None:
        """Adds scopes to ask for in the next token exchange (all up front: one exchange)."""
        with self._lock:
            for scope in scopes:
                if scope not in self._scopes:
                    self._scopes.append(scope)

    def header(self, scopes: Iterable[str]) -> dict[str, str]:
        challenge = self._challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            creds = self.creds()
            return {"Authorization": creds.basic()} if creds else {}
        needed = list(scopes)
        with self._lock:
            for scope in needed:
                if scope not in self._scopes:
                    self._scopes.insert(0, scope)
            token = self._token
            fresh = token is not None and self._clock() < token.expires_at
            if not (fresh and token and all(s in token.scopes for s in needed)):
                token = self._fetch_token(challenge, tuple(self._scopes))
                self._token = token
        return {"Authorization": f"Bearer {token.value}"}

    def unauthorized(self, resp: requests.Response) -> bool:
        """Takes in a 401: new challenge, new scopes, drops the cached token."""
        challenge = pick_challenge(resp.headers.get("WWW-Authenticate", ""))
        with self._lock:
            previous = self._challenge
            if challenge is not None:
                self._challenge = challenge
                for scope in reversed(challenge.scopes):
                    if scope in self._scopes:
                        self._scopes.remove(scope)
                    self._scopes.insert(0, scope)
            self._token = None
        if challenge is None:
            return False
        if challenge.scheme == "basic":
            # Basic credentials that were already sent will not get better on a retry.
            return previous is None or previous.scheme != "basic"
        return True

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> _Token:
        """A token for ``scopes`` from the challenge's realm, the credentials sent only to a
        realm ``check_realm`` allows. Raises ``RegistryAuthError`` when they are refused."""
        registry = self.endpoint.name
        realm = challenge.realm
        if not realm:
            raise RegistryAuthError(
                f"{registry} sent a Bearer challenge without a realm",
                registry=registry,
                action="auth",
            )
        creds = self.creds()
        headers = {}
        if creds:
            problem = check_realm(realm, self._base_url)
            if problem:
                raise RegistryAuthError(
                    f"{registry}: not sending credentials to its token service: {problem}",
                    registry=registry,
                    action="auth",
                )
            headers["Authorization"] = creds.basic()
        params: list[tuple[str, str]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        params += [("scope", s) for s in scopes]
        resp = self._ask_realm(realm, params, headers)
        self._check_token_answer(resp, realm, creds)
        value, ttl = _token_of(resp)
        if not value:
            raise RegistryError(
                f"{registry}: token service {safe_url(realm)} sent no token",
                registry=registry,
                action="auth",
                http_status=resp.status_code,
            )
        self._secrets.append(value)
        margin = min(TOKEN_EXPIRY_MARGIN, ttl / 4)
        return _Token(value, scopes, self._clock() + ttl - margin)

    def _ask_realm(
        self, realm: str, params: list[tuple[str, str]], headers: Mapping[str, str]
    ) -> requests.Response:
        """``GET realm``; a request that got no answer is ``RegistryUnavailable`` (the
        registry chose its token service: not reaching it is not the step's)."""
        registry = self.endpoint.name
        try:
            return self._transport.request(
                "GET",
                realm,
                params=params,
                headers=headers,
                timeout=60,
                allow_redirects=False,
                verify=self.endpoint.verify,
            )
        except requests.RequestException as err:
            problem = transport_problem(urlsplit(realm).netloc or registry, err, read_timeout=60)
            message = Masker(self.secrets).mask(
                f"{registry}: its token service {safe_url(realm)} failed: {problem}"
            )
            if isinstance(err, requests.ConnectionError | requests.Timeout):
                raise RegistryUnavailable(message, registry=registry, action="auth") from None
            raise RegistryError(message, registry=registry, action="auth") from None

    def _check_token_answer(self, resp: requests.Response, realm: str, creds: Credentials) -> None:
        """Raises unless the token service answered 200: ``RegistryAuthError`` naming the
        registry and the user for 401/403."""
        registry = self.endpoint.name
        masker = Masker(self.secrets)
        if resp.status_code in (401, 403):
            who = f"user {creds.username!r}" if creds else "anonymous access"
            raise RegistryAuthError(
                masker.mask(
                    f"{registry} rejected the credentials ({who}) at {safe_url(realm)}: "
                    f"{describe_body(resp)}; check the username and password"
                ),
                registry=registry,
                action="auth",
                http_status=resp.status_code,
                codes=tuple(registry_codes(resp)),
            )
        if resp.status_code != 200:
            busy = resp.status_code >= 500 or resp.status_code in (408, 429)
            raise (RegistryUnavailable if busy else RegistryError)(
                masker.mask(
                    f"{registry}: token service {safe_url(realm)} answered HTTP "
                    f"{resp.status_code}: {describe_body(resp)}"
                ),
                registry=registry,
                action="auth",
                http_status=resp.status_code,
                codes=tuple(registry_codes(resp)),
            )


def _token_of(resp: requests.Response) -> tuple[str, float]:
    """The token of a token service's answer and its lifetime in seconds (``""`` when the
    answer holds none)."""
    try:
        body = resp.json()
        value = body.get("token") or body.get("access_token")
        ttl = float(body.get("expires_in") or DEFAULT_TOKEN_TTL)
    except (ValueError, AttributeError, TypeError):
        return "", 0.0
    return (str(value) if value else ""), ttl
