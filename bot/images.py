"""An image in a registry and the credentials written for it: pure data shared by the
runners (box pulls) and the pushers (pushes, base images). Imports nothing of the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Scheme = Literal["https", "http", "auto"]
"""``auto``: HTTPS, falling back to plain HTTP; only for loopback hosts named without a scheme."""


@dataclass(frozen=True)
class RegistryAuth:
    """Credentials as written on a step or box (already expanded). All optional.

    Which one applies is decided by the registry auth resolver, never by a pusher:
    username/password (Basic or Bearer from the challenge), the ``aws_*`` set (ECR through
    boto3), or the ``azure_*`` set (Basic against the login server).
    """

    username: str = ""
    password: str = ""
    aws_access_key: str = ""
    aws_secret_key: str = ""
    aws_region: str = ""
    aws_registry_id: str = ""
    azure_client_id: str = ""
    azure_client_secret: str = ""
    azure_login_server: str = ""

    def secrets(self) -> list[str]:
        return [v for v in (self.password, self.aws_secret_key, self.azure_client_secret) if v]


@dataclass(frozen=True)
class ImageRef:
    """An image in a registry: ``registry`` is ``host[:port]`` (``registry-1.docker.io`` for
    Docker Hub), ``repository`` the lower-cased path (``library/busybox``), ``reference`` a tag
    or digest."""

    registry: str
    repository: str
    reference: str = "latest"
    scheme: Scheme = "https"
    auth: RegistryAuth = field(default_factory=RegistryAuth)

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"
