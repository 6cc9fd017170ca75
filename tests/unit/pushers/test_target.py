"""Target and image reference resolution (behaviour §7)."""

from __future__ import annotations

import pytest

from bot.errors import StepConfigError
from bot.logs import MemoryLog
from bot.pushers.model import RegistryAuth, Target
from bot.pushers.target import parse_image_ref, resolve_target
from bot.settings import RegistrySettings


def resolve(
    registries: dict[str, RegistrySettings] | None = None, **options: str
) -> tuple[Target, str]:
    log = MemoryLog()
    opts = {k.replace("_", "-"): v for k, v in options.items()}
    target = resolve_target(opts, default_tag="main", registries=registries or {}, log=log)
    return target, log.text


@pytest.mark.parametrize(
    ("registry", "repository", "want_registry", "want_repo"),
    [
        ("", "appOWNER/appname", "registry-1.docker.io", "appowner/appname"),
        ("", "busybox", "registry-1.docker.io", "library/busybox"),
        ("https://registry.hub.docker.com", "user/app", "registry-1.docker.io", "user/app"),
        ("https://registry.hub.docker.com/v1", "app", "registry-1.docker.io", "library/app"),
        ("https://hub.docker.com", "user/app", "registry-1.docker.io", "user/app"),
        ("", "docker.io/user/app", "registry-1.docker.io", "user/app"),
        ("index.docker.io", "index.docker.io/user/app", "registry-1.docker.io", "user/app"),
        ("quay.io", "acme/app", "quay.io", "acme/app"),
        ("https://quay.io", "quay.io/acme/app", "quay.io", "acme/app"),
        ("https://gcr.io", "gcr.io/my-project/x", "gcr.io", "my-project/x"),
        ("", "someregistry.com/a/b", "someregistry.com", "a/b"),
        ("https://someregistry.com", "someotherregistry.com/a/b", "someotherregistry.com", "a/b"),
        # OCIR workshop: DOCKER_REGISTRY=iad.ocir.io/tenancy
        ("https://iad.ocir.io/tenancy/v2", "iad.ocir.io/tenancy/app", "iad.ocir.io", "tenancy/app"),
        ("iad.ocir.io/tenancy", "app", "iad.ocir.io", "tenancy/app"),
        ("https://iad.ocir.io/tenancy/v2", "app", "iad.ocir.io", "tenancy/app"),
        ("127.0.0.1:5000", "team/app", "127.0.0.1:5000", "team/app"),
        ("", "localhost:5000/team/app", "localhost:5000", "team/app"),
    ],
)
def test_registry_and_repository(
    registry: str, repository: str, want_registry: str, want_repo: str
) -> None:
    target, _ = resolve(registry=registry, repository=repository)
    assert (target.registry, target.repository) == (want_registry, want_repo)


def test_repository_is_lower_cased_with_a_log_line() -> None:
    target, log = resolve(repository="Acme/MyApp")
    assert target.repository == "acme/myapp"
    assert "lower-cased" in log and "Acme/MyApp" in log


def test_host_in_repository_wins_and_is_logged() -> None:
    target, log = resolve(registry="https://a.example.com", repository="b.example.com/x/y")
    assert target.registry == "b.example.com"
    assert "wins" in log


@pytest.mark.parametrize(
    ("registry", "repository", "scheme"),
    [
        ("http://reg.example.com", "x/y", "http"),
        ("https://reg.example.com", "x/y", "https"),
        ("reg.example.com", "x/y", "https"),
        ("", "127.0.0.1:5000/x/y", "auto"),
        ("", "localhost:5000/x/y", "auto"),
        ("http://127.0.0.1:5000", "x/y", "http"),
        ("https://127.0.0.1:5000", "x/y", "https"),
        ("", "x/y", "https"),
    ],
)
def test_scheme(registry: str, repository: str, scheme: str) -> None:
    target, _ = resolve(registry=registry, repository=repository)
    assert target.scheme == scheme


def test_insecure_config_allows_fallback_for_other_hosts() -> None:
    registries = {"reg.lan:5000": RegistrySettings(host="reg.lan:5000", insecure=True)}
    target, _ = resolve(registries, repository="reg.lan:5000/x/y")
    assert target.scheme == "auto"
    target, _ = resolve({}, repository="reg.lan:5000/x/y")
    assert target.scheme == "https"


def test_missing_repository_is_a_config_error() -> None:
    with pytest.raises(StepConfigError, match="repository"):
        resolve(registry="quay.io")


@pytest.mark.parametrize("repository", ["a//b", "https://x/a/b", "a/b$", "-a/b"])
def test_invalid_repository(repository: str) -> None:
    with pytest.raises(StepConfigError):
        resolve(repository=repository)


def test_tag_in_repository_is_dropped_with_a_warning() -> None:
    target, log = resolve(repository="user/app:1.0", tag="v2")
    assert target.repository == "user/app" and target.tags == ("v2",)
    assert "ignored" in log


@pytest.mark.parametrize(
    ("raw", "tags"),
    [
        ("", ("main",)),
        ("v1", ("v1",)),
        ("latest, feature/x", ("latest", "feature-x")),
        ("a b\tc,d", ("a", "b", "c", "d")),
        ("v1,v1", ("v1",)),
        ("master-", ("master-",)),
    ],
)
def test_tags_split_and_sanitised(raw: str, tags: tuple[str, ...]) -> None:
    target, _ = resolve(repository="x/y", tag=raw)
    assert target.tags == tags


def test_changed_tag_is_logged() -> None:
    _, log = resolve(repository="x/y", tag="feature/login")
    assert "'feature/login'" in log and "'feature-login'" in log


def test_default_tag_is_sanitised_too() -> None:
    log = MemoryLog()
    target = resolve_target({"repository": "x/y"}, default_tag="feature/a", registries={}, log=log)
    assert target.tags == ("feature-a",)


# --- credentials --------------------------------------------------------------------------


def test_credentials_from_options_else_registry_defaults() -> None:
    registries = {"quay.io": RegistrySettings(host="quay.io", username="bot", password="dflt")}
    target, _ = resolve(registries, repository="quay.io/a/b", username="u", password="p")
    assert (target.auth.username, target.auth.password) == ("u", "p")
    target, _ = resolve(registries, repository="quay.io/a/b")
    assert (target.auth.username, target.auth.password) == ("bot", "dflt")


def test_docker_hub_defaults_found_under_any_alias() -> None:
    registries = {"docker.io": RegistrySettings(host="docker.io", username="hub", password="pw")}
    target, _ = resolve(registries, repository="user/app")
    assert target.auth.username == "hub"


ECR = dict(
    aws_access_key="AKIAEXAMPLE",
    aws_secret_key="secretkey",
    aws_region="us-east-1",
    aws_registry_id="123456789012",
)


def test_ecr_host_built_from_options() -> None:
    target, _ = resolve(None, repository="team/app", **ECR)
    assert target.registry == "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    assert target.repository == "team/app"
    assert target.auth.aws_secret_key == "secretkey"
    assert target.scheme == "https"


def test_ecr_host_in_repository_needs_no_region_or_id() -> None:
    target, _ = resolve(
        repository="210987654321.dkr.ecr.eu-west-2.amazonaws.com/team/app",
        aws_access_key="AKIA",
        aws_secret_key="s",
    )
    assert target.registry == "210987654321.dkr.ecr.eu-west-2.amazonaws.com"


@pytest.mark.parametrize("drop", ["aws_access_key", "aws_secret_key"])
def test_half_a_key_pair_is_a_clear_error(drop: str) -> None:
    options = {k: v for k, v in ECR.items() if k != drop}
    with pytest.raises(StepConfigError, match=drop.replace("_", "-")):
        resolve(None, repository="team/app", **options)


@pytest.mark.parametrize("drop", ["aws_region", "aws_registry_id"])
def test_ecr_without_region_or_id_is_a_clear_error(drop: str) -> None:
    options = {k: v for k, v in ECR.items() if k != drop}
    with pytest.raises(StepConfigError, match=drop.replace("_", "-")):
        resolve(None, repository="team/app", **options)


def test_ecr_without_keys_uses_the_default_chain() -> None:
    target, _ = resolve(
        repository="team/app", aws_region="us-east-1", aws_registry_id="123456789012"
    )
    assert target.registry.endswith(".amazonaws.com")
    assert target.auth.aws_access_key == "" and target.auth.aws_secret_key == ""


def test_azure_login_server_prefixes_and_partial_set_fails() -> None:
    target, _ = resolve(
        repository="team/app",
        azure_client_id="id",
        azure_client_secret="s",
        azure_login_server="acme.azurecr.io",
    )
    assert (target.registry, target.repository) == ("acme.azurecr.io", "team/app")
    with pytest.raises(StepConfigError, match="azure-login-server"):
        resolve(repository="team/app", azure_client_id="id", azure_client_secret="s")


def test_mirror_entry_found_for_the_named_host() -> None:
    from bot.pushers.target import registry_settings_for

    entry = RegistrySettings(host="127.0.0.1:5000", mirror_of="1.dkr.ecr.x.amazonaws.com")
    assert registry_settings_for("1.dkr.ecr.x.amazonaws.com", {"127.0.0.1:5000": entry}) is entry
    assert registry_settings_for("other.example.com", {"127.0.0.1:5000": entry}) is None


# --- box references -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "registry", "repository", "reference", "scheme"),
    [
        ("busybox", "registry-1.docker.io", "library/busybox", "latest", "https"),
        ("busybox:1.36", "registry-1.docker.io", "library/busybox", "1.36", "https"),
        ("user/app", "registry-1.docker.io", "user/app", "latest", "https"),
        (
            "127.0.0.1:5000/library/busybox:1.36",
            "127.0.0.1:5000",
            "library/busybox",
            "1.36",
            "auto",
        ),
        ("localhost:5000/app", "localhost:5000", "app", "latest", "auto"),
        ("quay.io/x/y@sha256:" + "a" * 64, "quay.io", "x/y", "sha256:" + "a" * 64, "https"),
        ("quay.io/x/y:t@sha256:" + "b" * 64, "quay.io", "x/y", "sha256:" + "b" * 64, "https"),
        (
            "docker.io/library/golang:1.22",
            "registry-1.docker.io",
            "library/golang",
            "1.22",
            "https",
        ),
        ("http://reg.lan:5000/a/b:c", "reg.lan:5000", "a/b", "c", "http"),
    ],
)
def test_parse_image_ref(
    text: str, registry: str, repository: str, reference: str, scheme: str
) -> None:
    auth = RegistryAuth(username="u", password="p")
    ref = parse_image_ref(text, auth=auth, registries={})
    assert (ref.registry, ref.repository, ref.reference, ref.scheme) == (
        registry,
        repository,
        reference,
        scheme,
    )
    assert ref.auth is auth


@pytest.mark.parametrize("text", ["", "Busybox", "x/y@sha256:zz", "x/y:bad/tag", "a//b"])
def test_bad_image_refs(text: str) -> None:
    with pytest.raises(StepConfigError):
        parse_image_ref(text, auth=RegistryAuth(), registries={})
