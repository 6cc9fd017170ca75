"""Real registries for tests: CNCF distribution (``/usr/bin/docker-registry``) on loopback.

Fixtures (all session-scoped; servers are killed by pid at session end):

``registry_plain`` → ``RegistryServer``: no auth, plain HTTP, ``relativeurls: true``.
``registry_htpasswd_tls`` → ``RegistryServer``: bcrypt htpasswd + TLS (test CA).
``registry_token_tls`` → ``RegistryServer``: token auth + TLS; ``.issuer`` is the
    ``tests.harness.token_issuer.TokenIssuer`` behind it (TTL knobs, recorded exchanges).
``registry_factory`` → ``start(flavour, users=None) -> RegistryServer`` for a private server
    (``flavour``: ``plain``, ``htpasswd``, ``token``); ``server.stop()`` takes it down early.
``fault_proxy`` (function-scoped) → ``tests.harness.fault_proxy.FaultProxy`` in front of
    ``registry_plain``: queue faults with ``add(...)``, read ``seen``.
``test_ca`` → ``TestCA`` (``ca_file``, ``cert_file``, ``key_file``; SANs 127.0.0.1, localhost).
``moto_ecr`` → ``MotoServer`` (``endpoint_url``): ``moto_server`` on loopback for the ECR
    control plane (no registry data plane: map the ECR host onto a local registry with
    ``RegistrySettings(host=<local>, mirror_of=<ecr host>, aws_endpoint_url=...)``).

A ``RegistryServer`` has ``host`` (``127.0.0.1:PORT``), ``url``, ``username``/``password``
(empty for plain), ``ca_file`` (None for plain), ``auth`` (a ``RegistryAuth``),
``registries`` (a ``{host: RegistrySettings}`` mapping with the CA, ready for
``DaemonlessPusher``/``parse_image_ref``), ``ref(repo, tag)`` and ``skopeo(*args)``, which
runs skopeo with a private HOME/authfile and ``--tls-verify=false`` so nothing on the host is
touched.

Helpers for other harness code: ``start_registry(directory, flavour, ca, users)``,
``free_port()``, ``wait_until(check, what)``, ``run_skopeo(args)`` (skopeo in a throwaway
HOME, as ``nobody`` when root) and ``die_with_parent`` (a ``preexec_fn``). ``busybox_image``
comes from ``tests.harness.images`` and is re-exported here so pytest finds it.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from bot.pushers.model import RegistryAuth
from bot.settings import RegistrySettings
from tests.harness.fault_proxy import FaultProxy
from tests.harness.token_issuer import TokenIssuer

REGISTRY_BIN = "/usr/bin/docker-registry"
USERNAME = "pusher"
PASSWORD = "s3cret-Pa55word-for-tests"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def die_with_parent() -> None:
    """``preexec_fn``: the child gets SIGTERM when the test process dies, even by SIGKILL
    (Linux ``PR_SET_PDEATHSIG``), so no server outlives a crashed or killed pytest."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGTERM))


def wait_until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not come up within {timeout} s")


# --- TLS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestCA:
    ca_file: str
    cert_file: str
    key_file: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem_key(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def self_signed(cn: str) -> tuple[bytes, bytes]:
    """(key PEM, cert PEM) of a self-signed certificate (the token signer)."""
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3))
        .sign(key, hashes.SHA256())
    )
    return _pem_key(key), cert.public_bytes(serialization.Encoding.PEM)


def make_ca(directory: Path) -> TestCA:
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    ca_key = _key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("wercker-bot test CA"))
        .issuer_name(_name("wercker-bot test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = _key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = TestCA(
        str(directory / "ca.crt"), str(directory / "tls.crt"), str(directory / "tls.key")
    )
    Path(paths.ca_file).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    Path(paths.cert_file).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    Path(paths.key_file).write_bytes(_pem_key(key))
    return paths


# --- registries ----------------------------------------------------------------------------


@dataclass
class RegistryServer:
    host: str
    scheme: str
    directory: Path
    process: subprocess.Popen[bytes] | None
    username: str = ""
    password: str = ""
    ca_file: str | None = None
    issuer: TokenIssuer | None = None
    users: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def auth(self) -> RegistryAuth:
        return RegistryAuth(username=self.username, password=self.password)

    @property
    def registries(self) -> dict[str, RegistrySettings]:
        return {self.host: RegistrySettings(host=self.host, ca_file=self.ca_file)}

    def ref(self, repository: str, tag: str = "latest") -> str:
        return f"{self.host}/{repository}:{tag}"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self.issuer is not None:
            self.issuer.stop()

    def skopeo(self, *args: str, creds: bool = True) -> subprocess.CompletedProcess[str]:
        """Runs skopeo with a private HOME and authfile; as root, it runs as ``nobody`` so
        that its blob-info cache goes to that HOME, not /var/lib/containers."""
        extra: list[str] = []
        if creds and self.username:
            extra = ["--creds", f"{self.username}:{self.password}"]
        return run_skopeo([args[0], *extra, *args[1:]])

    def inspect(self, repository: str, tag: str = "latest", raw: bool = False) -> Any:
        """``skopeo inspect`` of an image here; JSON (``raw``: the manifest as stored)."""
        args = ["inspect", "--tls-verify=false"] + (["--raw"] if raw else [])
        done = self.skopeo(*args, f"docker://{self.ref(repository, tag)}")
        if done.returncode != 0:
            raise AssertionError(f"skopeo inspect failed: {done.stderr.strip()}")
        return json.loads(done.stdout)


def run_skopeo(args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """``skopeo <args>`` in a throwaway HOME with an empty authfile, touching nothing else.

    skopeo as root keeps a blob-info cache in /var/lib/containers whatever HOME says, so
    root drops to ``nobody``: paths it must read have to be world-readable, which pytest's
    own tmp dirs are not (this is why HOME lives directly under the system temp dir).
    """
    home = Path(tempfile.mkdtemp(prefix="wb-skopeo-"))
    try:
        home.chmod(0o777)
        authfile = home / "auth.json"
        authfile.write_text("{}")
        authfile.chmod(0o666)
        env = {
            "HOME": str(home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "XDG_RUNTIME_DIR": str(home),
            "REGISTRY_AUTH_FILE": str(authfile),
        }
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
        cmd = [*prefix, "skopeo", "--tmpdir", str(home), *args]
        return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _config(
    directory: Path, port: int, flavour: str, ca: TestCA | None, issuer: TokenIssuer | None
) -> str:
    http: dict[str, Any] = {"addr": f"127.0.0.1:{port}", "relativeurls": flavour == "plain"}
    if ca is not None:
        http["tls"] = {"certificate": ca.cert_file, "key": ca.key_file}
    cfg: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {
            "filesystem": {"rootdirectory": str(directory / "data")},
            "delete": {"enabled": True},
        },
        "http": http,
    }
    if flavour == "htpasswd":
        cfg["auth"] = {
            "htpasswd": {"realm": "test-basic-realm", "path": str(directory / "htpasswd")}
        }
    if flavour == "token":
        assert issuer is not None
        cfg["auth"] = {
            "token": {
                "realm": issuer.realm,
                "service": issuer.service,
                "issuer": issuer.issuer,
                "rootcertbundle": str(directory / "token-signer.crt"),
            }
        }
    path = directory / "config.yml"
    path.write_text(json.dumps(cfg))  # JSON is YAML
    return str(path)


def start_registry(
    directory: Path,
    flavour: str,
    ca: TestCA | None = None,
    users: dict[str, str] | None = None,
) -> RegistryServer:
    """Starts one registry (``plain``, ``htpasswd`` or ``token``) and waits until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    users = users if users is not None else {USERNAME: PASSWORD}
    issuer: TokenIssuer | None = None
    if flavour in ("htpasswd", "token") and ca is None:
        raise ValueError(f"{flavour} needs a CA")
    if flavour == "htpasswd":
        lines = [
            f"{u}:{bcrypt.hashpw(p.encode(), bcrypt.gensalt(rounds=5)).decode()}"
            for u, p in users.items()
        ]
        (directory / "htpasswd").write_text("\n".join(lines) + "\n")
    if flavour == "token":
        assert ca is not None
        key_pem, cert_pem = self_signed("test-token-signer")
        (directory / "token-signer.crt").write_bytes(cert_pem)
        issuer = TokenIssuer(
            users=dict(users),
            signing_key_pem=key_pem,
            signing_cert_pem=cert_pem,
            tls_cert=Path(ca.cert_file),
            tls_key=Path(ca.key_file),
        )
        issuer.start()
    port = free_port()
    cfg = _config(directory, port, flavour, ca if flavour != "plain" else None, issuer)
    log = open(directory / "registry.log", "ab")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [REGISTRY_BIN, "serve", cfg],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
        preexec_fn=die_with_parent,
    )
    log.close()
    tls = flavour != "plain"
    server = RegistryServer(
        host=f"127.0.0.1:{port}",
        scheme="https" if tls else "http",
        directory=directory,
        process=process,
        username=USERNAME if flavour != "plain" and USERNAME in users else "",
        password=users.get(USERNAME, "") if flavour != "plain" else "",
        ca_file=ca.ca_file if tls and ca else None,
        issuer=issuer,
        users=dict(users),
    )

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"docker-registry exited; see {directory / 'registry.log'}")
        resp = requests.get(f"{server.url}/v2/", verify=server.ca_file or True, timeout=2)
        return resp.status_code in (200, 401)

    try:
        wait_until(answers, f"registry {flavour} on {server.host}")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture(scope="session")
def registry_factory(
    tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA
) -> Iterator[Callable[..., RegistryServer]]:
    started: list[RegistryServer] = []

    def start(flavour: str, users: dict[str, str] | None = None) -> RegistryServer:
        server = start_registry(
            tmp_path_factory.mktemp(f"registry-{flavour}"), flavour, test_ca, users
        )
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def registry_plain(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory("plain")


@pytest.fixture(scope="session")
def registry_htpasswd_tls(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory("htpasswd")


@pytest.fixture(scope="session")
def registry_token_tls(registry_factory: Callable[..., RegistryServer]) -> RegistryServer:
    return registry_factory("token")


# --- moto (ECR control plane) ---------------------------------------------------------------


@dataclass
class MotoServer:
    endpoint_url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture(scope="session")
def moto_ecr(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    import sys

    directory = tmp_path_factory.mktemp("moto")
    port = free_port()
    moto_bin = Path(sys.executable).with_name("moto_server")
    log = open(directory / "moto.log", "ab")  # noqa: SIM115 - owned by the process
    process = subprocess.Popen(
        [str(moto_bin), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=directory,
        preexec_fn=die_with_parent,
    )
    log.close()
    server = MotoServer(f"http://127.0.0.1:{port}", process)

    def answers() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"moto_server exited; see {directory / 'moto.log'}")
        return requests.get(f"{server.endpoint_url}/moto-api/", timeout=2).status_code < 500

    try:
        wait_until(answers, "moto_server", timeout=30)
        yield server
    finally:
        server.stop()


@pytest.fixture
def fault_proxy(registry_plain: RegistryServer) -> Iterator[FaultProxy]:
    """A fresh ``FaultProxy`` in front of ``registry_plain`` (``proxy.host``)."""
    proxy = FaultProxy(registry_plain.host)
    proxy.start()
    yield proxy
    proxy.stop()


# Re-exported so that the plugin list in tests/conftest.py needs no new entry.
from tests.harness.images import busybox_image  # noqa: E402, F401
