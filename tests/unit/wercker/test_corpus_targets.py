"""Where every push step of the real corpus goes: a reviewed specification, not a snapshot.

Each ``internal/docker-push`` / ``internal/docker-scratch-push`` step in ../shared/corpus (any
pipeline: steps, after-steps, deploy targets) is loaded with ``load_path``, expanded with
``expand_options`` against one fixed sample environment (``ENV``), and resolved with
``resolve_target``. ``EXPECTED`` holds, per step, the (registry host, repository, tags) that
behaviour.md §7 says the push must go to, or the error it must fail with. Every row was checked
by hand against the contract and the corpus file; the comments say why where it is not obvious.
The synthetic tests below pin the §7 rules the corpus only touches in passing.

Files are read in place; nothing from the corpus is copied here beyond the expected values.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import NamedTuple

import pytest

from bot.errors import StepConfigError
from bot.logs import MemoryLog
from bot.pushers.model import Target
from bot.pushers.target import resolve_target
from bot.wercker.expand import expand_options
from bot.wercker.model import Loc, StepSpec
from bot.wercker.parse import load_path, load_text
from tests.harness.paths import CORPUS, need_shared

PUSH_STEPS = ("internal/docker-push", "internal/docker-scratch-push")

SHA = "0123456789abcdef0123456789abcdef01234567"
BRANCH = "feature/x"
BRANCH_TAG = "feature-x"  # BRANCH made a valid Docker tag (§7: runs outside [A-Za-z0-9_.-] → '-')
BRANCH_SHA = f"{BRANCH_TAG}-{SHA}"  # `$WERCKER_GIT_BRANCH-$WERCKER_GIT_COMMIT`, sanitised
HUB = "registry-1.docker.io"  # Docker Hub, whatever alias the file used

# One fixed environment for every corpus push step: the WERCKER_* set the bot provides plus a
# plausible value for every other variable the corpus push steps reference (repo env/secrets).
ENV: dict[str, str] = {
    # provided by the bot (behaviour §6)
    "WERCKER_GIT_BRANCH": BRANCH,
    "WERCKER_GIT_COMMIT": SHA,
    "WERCKER_GIT_OWNER": "acme",
    "WERCKER_GIT_REPOSITORY": "app",
    "WERCKER_ROOT": "/pipeline/source",
    # not a Wercker variable (workflows-ecs-ecr-demo relies on it): the repo's env sets it here;
    # test_undefined_tag_variable_expands_to_empty covers it being unset
    "WERCKER_BRANCH_NAME": BRANCH,
    # OKE / OCIR workshops: the registry value holds a '/' (tenancy namespace)
    "DOCKER_REGISTRY": "iad.ocir.io/tenancy",
    "DOCKER_REPO": "acme/app",
    "DOCKER_USERNAME": "u",
    "DOCKER_PASSWORD": "p",
    "OCI_AUTH_TOKEN": "t",
    "DOCKER_USER": "u",
    "DOCKER_PASS": "p",
    "USERNAME": "dockeruser",
    "PASSWORD": "pw",
    "DOCKERHUB_USERNAME": "hubuser",
    "DOCKERHUB_PASSWORD": "hubpw",
    "DOCKERHUB_REPOSITORY": "acme/gke-demo",
    "DOCKER_IMAGE_NAME": "deploy-kit",
    "DOCKER_IMAGE_TAG": "1.0.0",
    "REPO": "acme/synced",
    "REPOSITORY": "acme/oinker",
    "REPO_ADDRESS": "sample-webapp",
    # Akshaykapoor__kubernetes-ci-cd: "Pushing to a quay.io repository", registry bare $VAR
    "PRIVATE_REGISTRY_PATH": "quay.io",
    "REPO_NAME": "akshaykapoor",
    "APP_NAME": "k8s-app",
    "CONTAINER_REGISTRY_USERNAME": "akshaykapoor+robot",
    "API_USER_TOKEN": "quay-token",
    "QUAY_USERNAME": "wercker+robot",
    "QUAY_PASSWORD": "quay-pw",
    "OCIRUSERNAME": "oracle/u",
    "OCIRPASSWORD": "ocir-pw",
    "OCIR_USERNAME": "odx-pipelines/u",
    "OCIR_PASSWORD": "ocir-pw",
    "OCIR_REGION": "nrt",
    "OCIR_TENANCY": "tenancy",
    "OCIR_REPOSITORY": "demo",
    "REGISTRY_USERNAME": "tenancy/u",
    "REGISTRY_PASSWORD": "reg-pw",
    "GKE_PROJECT_ID": "acme-project",
    "GCR_JSON": '{"type": "service_account"}',
    "GCR_JSON_KEY_FILE": '{"type": "service_account"}',
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "aws-secret",
    "AWS_REGISTRY_ID": "123456789012",
    # a different account for the *_CI_* set, so a row shows which variable was used
    "AWS_CI_ACCESS_KEY_ID": "AKIACIEXAMPLE",
    "AWS_CI_SECRET_ACCESS_KEY": "aws-ci-secret",
    "AWS_CI_REGISTRY_ID": "210987654321",
    "AZURE_CLIENT_ID": "client-id",
    "AZURE_CLIENT_SECRET": "client-secret",
    "AZURE_LOGIN_SERVER": "acme.azurecr.io",
    "AZURE_REGISTRY_NAME": "acme",
    "AZURE_RESOURCE_GROUP": "rg",
    "AZURE_SUBSCRIPTION_ID": "sub",
    "AZURE_TENANT_ID": "tenant",
    "VERSION": "1.2.0",
    "PUSH_TAG": "v2.5.0",
    "TPL_IGENERATOR_VERSION": "0.3.0",
    "PORT": "8080",
}


class Push(NamedTuple):
    registry: str
    repository: str
    tags: tuple[str, ...]


class Fails(NamedTuple):
    error: type[Exception]
    fragment: str


# (file, pipeline, step list, index in that list) → where the push goes. The file is its name in
# corpus/wercker-yml/files without a trailing "__wercker.yml"; the step list is "steps",
# "after-steps" or "target:<name>" (a deploy target).
Key = tuple[str, str, str, int]

ECR_1 = "123456789012.dkr.ecr.us-east-1.amazonaws.com"  # AWS_REGISTRY_ID
ECR_CI = "210987654321.dkr.ecr.us-east-1.amazonaws.com"  # AWS_CI_REGISTRY_ID
ECR_TAGS = (SHA, BRANCH_TAG, "latest")  # `$WERCKER_GIT_COMMIT, $WERCKER_GIT_BRANCH, latest`

EXPECTED: dict[Key, Push | Fails] = {
    # --- OKE / OCIR: `registry: https://$DOCKER_REGISTRY/v2`, `repository:
    # $DOCKER_REGISTRY/$DOCKER_REPO` → the host in repository wins; /v2 is ignored; the tenancy
    # namespace stays in the repository path.
    ("0k00l__twitter-feed-oke", "push-release", "steps", 0): Push(
        "iad.ocir.io", "tenancy/acme/app", (BRANCH_SHA,)
    ),
    ("29592__twitter-feed-oke", "push-image", "steps", 0): Push(
        "iad.ocir.io", "tenancy/acme/app", (BRANCH_SHA,)
    ),
    (
        "yhjjee__cloud-native-devops-workshop-wercker-oke",
        "push-release-1",
        "steps",
        0,
    ): Push("iad.ocir.io", "tenancy/acme/app", (f"{BRANCH_SHA}-helidon-movie-api-mp",)),
    (
        "yhjjee__cloud-native-devops-workshop-wercker-oke",
        "push-release-2",
        "steps",
        0,
    ): Push("iad.ocir.io", "tenancy/acme/app", (f"{BRANCH_SHA}-springboot-movie-people-api",)),
    (
        "yhjjee__cloud-native-devops-workshop-wercker-oke",
        "push-release-3",
        "steps",
        2,
    ): Push("iad.ocir.io", "tenancy/acme/app", (f"{BRANCH_SHA}-jet-movie-msa-ui",)),
    # OCIR with a bare `registry: $DOCKER_REGISTRY` (no scheme, no /v2) and `repository:
    # $DOCKER_REPO`: the registry's path (the tenancy) is the repository's namespace.
    ("zulus007__twitter-feed", "push-release", "steps", 0): Push(
        "iad.ocir.io", "tenancy/acme/app", (BRANCH_SHA,)
    ),
    # `tag: latest, $WERCKER_GIT_BRANCH-$WERCKER_GIT_COMMIT`: a comma/space list, kept in order
    ("APACTestDrive__Container-Native-Development-with-OKE", "build", "steps", 1): Push(
        "iad.ocir.io", "tenancy/acme/app", ("latest", BRANCH_SHA)
    ),
    ("AZaman001__customTest", "push-release", "steps", 1): Push(
        "iad.ocir.io", "tenancy/acme/app", ("ocir",)
    ),
    ("AZaman001__sample-node", "build-and-push", "steps", 0): Push(
        "iad.ocir.io", "tenancy/acme/app", ("ocir",)
    ),
    # `registry: https://iad.ocir.io/v2` + a host-less `$DOCKER_REPO`: the registry gives the host
    ("AlejandroLaban__helidon-quickstart-se", "build", "steps", 1): Push(
        "iad.ocir.io", "acme/app", (SHA,)
    ),
    (
        "MadalinaPatrichi__uob-cloud-computing",
        "build-and-push-docker",
        "steps",
        1,
    ): Push("iad.ocir.io", "uobtestaccount1/todoapp", ("latest",)),
    # `$OCIR_REGION.ocir.io/$OCIR_TENANCY/$OCIR_REPOSITORY/cowweb`, no registry; `tag: v1.0`
    ("oracle-japan__cowweb-for-wercker-demo", "push-to-releases", "steps", 1): Push(
        "nrt.ocir.io", "tenancy/demo/cowweb", ("v1.0",)
    ),
    ("wercker__blueprint", "proto-box", "steps", 9): Push(
        "iad.ocir.io", "odx-pipelines/wercker/protoc", ("2.0.0",)
    ),
    # --- Multi-region OCIR, options written as siblings of the step key; `tag: $VERSION`.
    **{
        ("oracle__mysql-operator", pipeline, "steps", index): Push(
            f"{region}.ocir.io", f"oracle/{image}", ("1.2.0",)
        )
        for pipeline, image in (
            ("push-operator-image", "mysql-operator"),
            ("push-agent-image", "mysql-agent"),
        )
        for index, region in enumerate(("iad", "lhr", "phx", "fra"), start=2)
    },
    ("oracle__oci-flexvolume-driver", "system-test", "steps", 2): Push(
        "iad.ocir.io", "oracle/oci-flexvolume-driver-test", ("1.2.0",)
    ),
    **{
        ("oracle__oci-flexvolume-driver", "push", "steps", index): Push(
            f"{region}.ocir.io", "oracle/oci-flexvolume-driver", ("1.2.0",)
        )
        for index, region in enumerate(("iad", "lhr", "phx", "fra"), start=3)
    },
    **{
        ("oracle__oci-volume-provisioner", "push", "steps", index): Push(
            f"{region}.ocir.io", "oracle/oci-volume-provisioner", ("1.2.0",)
        )
        for index, region in enumerate(("iad", "lhr", "phx", "fra"), start=4)
    },
    # `repository: wcr.io/oracle/...`, no registry: the host in repository is the registry
    ("oracle__oci-cloud-controller-manager", "push", "steps", 3): Push(
        "wcr.io", "oracle/oci-cloud-controller-manager", ("1.2.0",)
    ),
    # --- No repository at all (push in after-steps; these relied on the hosted wcr.io):
    # behaviour §7 has no default repository, so the step fails clearly.
    ("oracle__federated-ingress-controller", "build", "after-steps", 0): Fails(
        StepConfigError, "repository is not set"
    ),
    ("oracle__navarkos", "build", "after-steps", 0): Fails(
        StepConfigError, "repository is not set"
    ),
    # --- Docker Hub named as `registry: https://registry.hub.docker.com` + `namespace/name`
    # (the cloudnativego shape). Wercker pushed to `registry.hub.docker.com/namespace/name`
    # (wercker-spec §2.4); we deliberately do not: Hub host, repository without a host prefix.
    **{
        (f"cloudnativego__{name}", "deploy", "steps", 0): Push(
            HUB, f"cloudnativego/{image}", ("latest",)
        )
        for name, image in (
            ("backing-catalog", "backing-catalog"),
            ("drones-events", "drones-events"),
            ("gogo-service", "gogo-service"),
            ("hello", "book-hello"),
            ("secureweb", "secureweb"),
        )
    },
    ("227235__wercker", "deploy", "steps", 0): Push(HUB, "slepech/docker", (SHA,)),
    ("821760408-sp__go-wercker-example", "deploy", "steps", 0): Push(
        HUB, "821760408-sp/go-wercker-example", ("latest",)
    ),
    # a deploy target (`deploy: {dockerhub: [...], ecs: [...]}`) holding a scratch-push
    ("chiefy__wercker-node-ecs-demo", "deploy", "target:dockerhub", 0): Push(
        HUB, "chiefy/wercker-ecs-demo", (SHA,)
    ),
    # kubermatic: scratch-push with a `name:` option (removed from the options) and author/email
    ("kubermatic__kubermatic", "push-hash-image", "steps", 1): Push(HUB, "kubermatic/api", (SHA,)),
    ("kubermatic__kubermatic", "push-image", "steps", 1): Push(HUB, "kubermatic/api", ("v2.5.0",)),
    ("skidder__streammarker-collector", "deploy", "steps", 0): Push(
        HUB, "skidder/streammarker-collector", ("latest",)
    ),
    # `tag: ${WERCKER_GIT_COMMIT}`
    ("superyhee__wercker-example-java-spring-redis", "build", "steps", 2): Push(
        HUB, "combient/wercker-example-java-spring-redis", (SHA,)
    ),
    ("wercker__wercker-gke-demo", "push-dockerhub", "steps", 1): Push(HUB, "acme/gke-demo", (SHA,)),
    # `registry: https://registry.hub.docker.com/v2`: the /v2 suffix is ignored
    ("getfider__fider", "dockerize", "steps", 2): Push(HUB, "getfider/fider", ("latest",)),
    # `tag: latest, $WERCKER_GIT_BRANCH`; options written as siblings of the step key
    ("wodby__docs__.wercker.yml", "push", "steps", 2): Push(
        HUB, "wodby/docs", ("latest", BRANCH_TAG)
    ),
    # `registry: https://registry-1.docker.io`, no tag → the branch name, sanitised
    ("wercker__wercker__tests__projects__docker-hub-test", "build", "steps", 1): Push(
        HUB, "faiq/test-faiq", (BRANCH_TAG,)
    ),
    # --- Docker Hub with no registry option.
    # `tag: ${WERCKER_GIT_BRANCH}-${WERCKER_GIT_COMMIT},latest`
    ("Akshaykapoor__appdev-sample", "docker-push", "steps", 1): Push(
        HUB, "u/sample-webapp", (BRANCH_SHA, "latest")
    ),
    ("AlbanBarbosa1982__springpetclinic", "push-to-hub", "steps", 0): Push(
        HUB, "albanbarbosa/pet-clinic", (SHA,)
    ),
    ("gazf__wercker-docker-deploy-kit", "build", "steps", 2): Push(
        HUB, "hubuser/deploy-kit", ("1.0.0",)
    ),
    ("rootsongjc__k8s-app-monitor-agent", "deploy", "steps", 0): Push(
        HUB, "jimmysong/k8s-app-monitor-agent", ("latest",)
    ),
    ("wercker__oinker", "build-dev", "steps", 2): Push(HUB, "acme/oinker", ("dev",)),
    ("wercker__oinker", "build-prod", "steps", 2): Push(HUB, "acme/oinker", ("alpine",)),
    ("wercker__wercker__tests__projects__reg-v1-test", "build", "steps", 1): Push(
        HUB, "faiq/test", (BRANCH_TAG,)
    ),
    # `tags: anytag` is read as `tag` (behaviour §6; Wercker ignored it and pushed `latest`)
    ("wercker__wercker__tests__projects__sync-env-alpine", "build", "steps", 1): Push(
        HUB, "acme/synced", ("anytag",)
    ),
    # single-component name on Docker Hub → `library/`
    (
        "wercker__wercker__tests__projects__docker-push-image",
        "build",
        "steps",
        1,
    ): Push(HUB, "library/myrepo2", ("docker-push-image-tag2",)),
    # `repository: docker.io/$USERNAME/docker-build-golang` is recognised as Docker Hub
    ("wercker__docker-build-golang", "build", "steps", 5): Push(
        HUB, "dockeruser/docker-build-golang", ("latest",)
    ),
    # --- quay.io: `registry: https://quay.io` (with scheme) ...
    ("wercker__blueprint__templates__service", "push-quay", "steps", 4): Push(
        "quay.io", "wercker/blueprint", (BRANCH_SHA, SHA)
    ),
    ("wercker__blueprint", "igenerator-push-quay", "steps", 0): Push(
        "quay.io", "wercker/igenerator", (BRANCH_SHA, SHA, "0.3.0")
    ),
    ("wercker__cronetes", "push-quay", "steps", 2): Push(
        "quay.io", "wercker/cronetes", (BRANCH_SHA, "latest")
    ),
    # a scratch-push
    ("wercker__wercker-kubernetes-quay", "deploy", "steps", 0): Push(
        "quay.io", "wercker/wercker-kubernetes-quay", (SHA,)
    ),
    # a scratch-push; tags keep their case (only the repository is lower-cased)
    ("wercker__wercker__tests__projects__scratch-n-push", "build", "steps", 1): Push(
        "quay.io", "wercker/scratch-n-push", ("uniqueTagFromTest",)
    ),
    # ... and `registry: quay.io` (no scheme)
    ("wercker__workflows-kubernetes-demo", "push-debug", "steps", 0): Push(
        "quay.io", "wercker/workflows-kubernetes-demo", (f"debug-{SHA}",)
    ),
    ("wercker__workflows-kubernetes-demo", "push-release", "steps", 3): Push(
        "quay.io", "wercker/workflows-kubernetes-demo", (f"release-{SHA}",)
    ),
    # `registry: $PRIVATE_REGISTRY_PATH` (bare quay.io) + `repository: $REPO_NAME/$APP_NAME`
    ("Akshaykapoor__kubernetes-ci-cd", "docker-push", "steps", 1): Push(
        "quay.io", "akshaykapoor/k8s-app", (BRANCH_SHA, "latest")
    ),
    # --- gcr.io with `username: _json_key` (auth pinned in test_gcr_json_key_is_passed_on)
    ("wercker__todo-api", "push-gcr", "steps", 4): Push(
        "gcr.io", "acme-project/todo-api", (BRANCH_SHA,)
    ),
    ("wercker__todo-service", "push-gcr", "steps", 4): Push(
        "gcr.io", "acme-project/todo-service", (BRANCH_SHA,)
    ),
    # `registry: gcr.io` with no scheme, no tag
    ("wercker__wercker__tests__projects__gcr-test", "build", "steps", 1): Push(
        "gcr.io", "cooltime3000/kiddie-pool", (BRANCH_TAG,)
    ),
    # a private registry named only inside repository
    ("wercker__wercker__tests__projects__docker-push", "build", "steps", 2): Push(
        "my.registry.com", "someuser/test-docker-push", ("latest",)
    ),
    # --- ECR: all four aws-* → <aws-registry-id>.dkr.ecr.<aws-region>.amazonaws.com, the
    # repository without a host (and no `library/`: that is Docker Hub only).
    ("pusher__faros", "push-to-ecr", "steps", 3): Push(ECR_CI, "pusher/faros", ECR_TAGS),
    ("pusher__k8s-spot-rescheduler__wercker.yaml.yml", "push-to-ecr", "steps", 1): Push(
        ECR_1, "pusher/spot-rescheduler", ECR_TAGS
    ),
    ("pusher__k8s-spot-rescheduler", "push-to-ecr", "steps", 1): Push(
        ECR_1, "pusher/k8s-spot-rescheduler", ECR_TAGS
    ),
    ("pusher__k8s-spot-termination-handler", "build", "steps", 4): Push(
        ECR_1, "pusher/spot-termination-handler", ECR_TAGS
    ),
    ("pusher__quack", "push-to-ecr", "steps", 1): Push(ECR_CI, "pusher/quack", ECR_TAGS),
    ("wercker__wercker__tests__projects__amzn-test", "build", "steps", 1): Push(
        ECR_1, "test-faiq", (BRANCH_TAG,)
    ),
    # `tag: debug-$WERCKER_BRANCH_NAME`: sanitised in the middle of a tag too
    ("wercker__workflows-ecs-ecr-demo", "push-debug-ecr", "steps", 1): Push(
        ECR_1, "workflows-demo", ("debug-feature-x",)
    ),
    # `tag: $WERCKER_GIT_BRANCH` exactly: `feature/x` → `feature-x` (Wercker failed: bad tag)
    ("wercker__workflows-ecs-ecr-demo", "push-release-ecr", "steps", 1): Push(
        ECR_1, "workflows-demo", (BRANCH_TAG,)
    ),
    # --- Azure ACR (a Wercker fixture with all seven azure-*): the login server is the host
    ("wercker__wercker__tests__projects__azure", "build", "steps", 1): Push(
        "acme.azurecr.io", "faiqus-contianer", (BRANCH_TAG,)
    ),
}

# Files that mention a push step but cannot be read at all (invalid YAML, located errors are
# pinned in test_corpus.py), so they can have no row.
UNREADABLE_WITH_PUSH = {"136772__helloword__wercker.yml", "pusher__wave__wercker.yml"}
_PUSH_TEXT = re.compile(rb"internal/docker-(?:scratch-)?push\b")


def short(file_name: str) -> str:
    return file_name.removesuffix("__wercker.yml")


@functools.cache
def corpus_push_steps() -> dict[Key, StepSpec]:
    """Every push step of every readable corpus file, keyed like ``EXPECTED``."""
    found: dict[Key, StepSpec] = {}
    for path in sorted((need_shared(CORPUS) / "files").iterdir()):
        if not _PUSH_TEXT.search(path.read_bytes()):
            continue
        wf, _ = load_path(path, path.name)
        if wf is None:
            continue
        for pipeline in wf.pipelines.values():
            lists = {"steps": pipeline.steps, "after-steps": pipeline.after_steps}
            lists.update({f"target:{name}": steps for name, steps in pipeline.targets.items()})
            for where, steps in lists.items():
                for index, step in enumerate(steps):
                    if step.id in PUSH_STEPS:
                        found[(short(path.name), pipeline.name, where, index)] = step
    return found


def resolve(step: StepSpec, env: Mapping[str, str] = ENV, log: MemoryLog | None = None) -> Target:
    log = log if log is not None else MemoryLog()
    options = expand_options(step, env, log)
    return resolve_target(options, default_tag=BRANCH, registries={}, log=log)


def resolve_options(**options: str) -> Target:
    """``resolve_target`` on already-expanded options (``aws_region`` → ``aws-region``)."""
    named = {key.replace("_", "-"): value for key, value in options.items()}
    return resolve_target(named, default_tag=BRANCH, registries={}, log=MemoryLog())


def corpus_step(key: Key) -> StepSpec:
    step = corpus_push_steps().get(key)
    assert step is not None, f"no push step at {key}: did the parser drop or move it?"
    return step


# --- the corpus table ------------------------------------------------------------------------


@pytest.mark.corpus
def test_every_corpus_push_step_has_a_reviewed_row() -> None:
    steps = corpus_push_steps()
    assert set(steps) == set(EXPECTED)
    # every file whose text names a push step is in the table, unless it is unreadable
    files = {
        p.name
        for p in (need_shared(CORPUS) / "files").iterdir()
        if _PUSH_TEXT.search(p.read_bytes())
    }
    assert {short(n) for n in files - UNREADABLE_WITH_PUSH} == {key[0] for key in EXPECTED}
    for name in UNREADABLE_WITH_PUSH:
        assert load_path(CORPUS / "files" / name)[0] is None, name
    assert (len(files - UNREADABLE_WITH_PUSH), len(EXPECTED)) == (59, 80)


@pytest.mark.corpus
@pytest.mark.parametrize("key", sorted(EXPECTED), ids=lambda k: f"{k[0]}:{k[1]}/{k[2]}[{k[3]}]")
def test_corpus_push_step_resolves_as_specified(key: Key) -> None:
    expected = EXPECTED[key]
    step = corpus_step(key)
    if isinstance(expected, Fails):
        with pytest.raises(expected.error, match=re.escape(expected.fragment)):
            resolve(step)
        return
    target = resolve(step)
    assert Push(target.registry, target.repository, target.tags) == expected
    assert target.scheme == "https"  # no corpus push names http:// or a loopback host


@pytest.mark.corpus
def test_env_defines_every_variable_the_push_steps_use() -> None:
    """So no row depends on a name silently expanding to "" (only strict options would fail)."""
    used = {
        match.group(1)
        for step in corpus_push_steps().values()
        for option, text in step.options.items()
        if option not in ("cmd", "entrypoint")  # never expanded
        for match in re.finditer(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", text)
    }
    assert used - set(ENV) == set()
    assert len([row for row in EXPECTED.values() if isinstance(row, Fails)]) == 2


@pytest.mark.corpus
def test_gcr_json_key_is_passed_on() -> None:
    """gcr.io: `username: _json_key`, the key JSON as the password (behaviour §7)."""
    target = resolve(corpus_step(("wercker__todo-api", "push-gcr", "steps", 4)))
    assert (target.auth.username, target.auth.password) == ("_json_key", ENV["GCR_JSON_KEY_FILE"])


@pytest.mark.corpus
def test_ecr_keys_come_from_the_step() -> None:
    target = resolve(corpus_step(("pusher__faros", "push-to-ecr", "steps", 3)))
    auth = target.auth
    assert (auth.aws_access_key, auth.aws_secret_key) == ("AKIACIEXAMPLE", "aws-ci-secret")
    assert (auth.aws_region, auth.aws_registry_id) == ("us-east-1", "210987654321")


@pytest.mark.corpus
def test_ocir_credentials_and_host() -> None:
    """OKE workshop: `password: $OCI_AUTH_TOKEN`; `registry: https://$DOCKER_REGISTRY/v2` with
    DOCKER_REGISTRY holding a '/' still gives the bare host."""
    key = ("0k00l__twitter-feed-oke", "push-release", "steps", 0)
    step = corpus_step(key)
    assert step.options["registry"] == "https://$DOCKER_REGISTRY/v2"
    assert step.options["repository"] == "$DOCKER_REGISTRY/$DOCKER_REPO"
    target = resolve(step)
    assert (target.registry, target.repository) == ("iad.ocir.io", "tenancy/acme/app")
    assert (target.auth.username, target.auth.password) == ("u", "t")


@pytest.mark.corpus
def test_undefined_variable_in_a_strict_option_fails_naming_it() -> None:
    """behaviour §6: an undefined `$VAR` in repository/registry/... fails the step and names
    the variable and the option (Wercker expanded it to "" and pushed elsewhere)."""
    step = corpus_step(("zulus007__twitter-feed", "push-release", "steps", 0))
    env = {k: v for k, v in ENV.items() if k != "DOCKER_REPO"}
    with pytest.raises(StepConfigError, match=r"\$DOCKER_REPO is not defined.*'repository'"):
        resolve(step, env)


@pytest.mark.corpus
def test_undefined_tag_variable_expands_to_empty() -> None:
    """`tag: debug-$WERCKER_BRANCH_NAME` (not a Wercker variable): outside the strict options
    an undefined name expands to "" and the log warns; `debug-` is a valid tag."""
    key = ("wercker__workflows-ecs-ecr-demo", "push-debug-ecr", "steps", 1)
    env = {k: v for k, v in ENV.items() if k != "WERCKER_BRANCH_NAME"}
    log = MemoryLog()
    target = resolve(corpus_step(key), env, log)
    assert target.tags == ("debug-",)
    assert "warning:" in log.text and "$WERCKER_BRANCH_NAME" in log.text


# --- Docker Hub aliases (behaviour §7) --------------------------------------------------------

HUB_ALIASES = (
    "",
    "docker.io",
    "index.docker.io",
    "registry.hub.docker.com",
    "registry-1.docker.io",
    "hub.docker.com",
)
REGISTRY_FORMS = ("{}", "https://{}", "{}/v1", "{}/v2", "https://{}/v1/", "https://{}/v2")


@pytest.mark.parametrize("form", REGISTRY_FORMS)
@pytest.mark.parametrize("alias", HUB_ALIASES)
def test_docker_hub_aliases_in_registry(alias: str, form: str) -> None:
    """Every alias, with or without https:// and /v1 or /v2, is Docker Hub; the repository
    gets no host prefix (Wercker wrongly wrote `registry.hub.docker.com/acme/app`), and a
    single-component name gets `library/`."""
    registry = form.format(alias) if alias else ""
    target = resolve_options(repository="acme/app", registry=registry)
    assert (target.registry, target.repository, target.scheme) == (HUB, "acme/app", "https")
    single = resolve_options(repository="busybox", registry=registry)
    assert (single.registry, single.repository) == (HUB, "library/busybox")


@pytest.mark.parametrize("alias", HUB_ALIASES[1:])
def test_docker_hub_aliases_in_repository(alias: str) -> None:
    """A Hub alias as the repository's host (`docker.io/$USERNAME/...`) is Docker Hub."""
    target = resolve_options(repository=f"{alias}/acme/app")
    assert (target.registry, target.repository) == (HUB, "acme/app")
    single = resolve_options(repository=f"{alias}/busybox")
    assert (single.registry, single.repository) == (HUB, "library/busybox")


def test_cloudnativego_shape() -> None:
    """`registry: https://registry.hub.docker.com` + `repository: namespace/name`: Docker Hub,
    `namespace/name` (not `registry.hub.docker.com/namespace/name` as Wercker did)."""
    target = resolve_options(
        repository="cloudnativego/backing-catalog", registry="https://registry.hub.docker.com"
    )
    assert (target.registry, target.repository) == (HUB, "cloudnativego/backing-catalog")


# --- other registries ------------------------------------------------------------------------


def test_ocir_with_versioned_registry_and_prefixed_repository() -> None:
    target = resolve_options(
        registry="https://iad.ocir.io/tenancy/v2", repository="iad.ocir.io/tenancy/acme/app"
    )
    assert (target.registry, target.repository, target.scheme) == (
        "iad.ocir.io",
        "tenancy/acme/app",
        "https",
    )


@pytest.mark.parametrize(
    "registry", ["https://quay.io", "quay.io", "quay.io/v1", "https://quay.io/v2/"]
)
@pytest.mark.parametrize("repository", ["quay.io/wercker/cronetes", "wercker/cronetes"])
def test_quay_with_and_without_scheme(registry: str, repository: str) -> None:
    target = resolve_options(registry=registry, repository=repository)
    assert (target.registry, target.repository, target.scheme) == (
        "quay.io",
        "wercker/cronetes",
        "https",
    )


def test_repository_host_wins_over_registry() -> None:
    log = MemoryLog()
    options = {"registry": "https://gcr.io", "repository": "quay.io/a/b"}
    target = resolve_target(options, default_tag=BRANCH, registries={}, log=log)
    assert (target.registry, target.repository) == ("quay.io", "a/b")
    assert "wins over registry gcr.io" in log.text


def test_repository_is_lower_cased_and_logged() -> None:
    log = MemoryLog()
    target = resolve_target({"repository": "Acme/App"}, default_tag=BRANCH, registries={}, log=log)
    assert target.repository == "acme/app"
    assert "lower-cased to 'acme/app'" in log.text


# --- ECR -------------------------------------------------------------------------------------

ECR_ALL = {
    "aws_access_key": "AKIAEXAMPLE",
    "aws_secret_key": "aws-secret",
    "aws_region": "us-east-1",
    "aws_registry_id": "123456789012",
}


def test_ecr_with_all_four_options() -> None:
    target = resolve_options(repository="pusher/faros", **ECR_ALL)
    assert (target.registry, target.repository) == (ECR_1, "pusher/faros")


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        (("aws_access_key",), "aws-secret-key is missing"),
        (("aws_secret_key",), "aws-access-key is missing"),
        (("aws_region",), "aws-registry-id missing"),
        (("aws_registry_id",), "aws-region missing"),
        (("aws_access_key", "aws_secret_key"), "aws-region and aws-registry-id missing"),
        (("aws_access_key", "aws_secret_key", "aws_region"), "aws-registry-id missing"),
        (("aws_access_key", "aws_secret_key", "aws_registry_id"), "aws-region missing"),
        (("aws_access_key", "aws_region", "aws_registry_id"), "aws-secret-key is missing"),
    ],
)
def test_partial_ecr_options_are_a_clear_error(given: tuple[str, ...], fragment: str) -> None:
    """behaviour §7: a partial set is a clear error (Wercker silently fell back to Docker Hub)."""
    options = {name: ECR_ALL[name] for name in given}
    with pytest.raises(StepConfigError, match=re.escape(fragment)):
        resolve_options(repository="pusher/faros", **options)


def test_ecr_without_keys_uses_the_host_credentials() -> None:
    """behaviour §7: with the keys omitted, boto3's own chain (instance role) is used."""
    target = resolve_options(
        repository="app", aws_region="us-east-1", aws_registry_id="123456789012"
    )
    assert (target.registry, target.repository) == (ECR_1, "app")
    assert (target.auth.aws_access_key, target.auth.aws_secret_key) == ("", "")


ECR_INSTANCE_ROLE_YML = """\
box: alpine
build:
  steps:
    - internal/docker-push:
        repository: app
        aws-region: us-east-1
        aws-registry-id: "123456789012"
"""


def test_ecr_without_keys_is_not_a_lint_error() -> None:
    wf, problems = load_text(ECR_INSTANCE_ROLE_YML, "wercker.yml")
    assert wf is not None
    assert [p.format() for p in problems if p.severity == "error"] == []


# --- tags ------------------------------------------------------------------------------------


def test_branch_tag_is_sanitised_and_logged() -> None:
    log = MemoryLog()
    options = {"repository": "acme/app", "tag": "$WERCKER_GIT_BRANCH"}
    step = StepSpec("internal/docker-push", Loc("wercker.yml", 1, 1), "push", options)
    target = resolve(step, ENV, log)
    assert target.tags == (BRANCH_TAG,)  # `feature/x` → `feature-x`
    assert "'feature/x'" in log.text and "'feature-x'" in log.text


def test_no_tag_means_the_branch_name() -> None:
    assert resolve_options(repository="acme/app").tags == (BRANCH_TAG,)


@pytest.mark.parametrize(
    ("tag", "tags"),
    [
        ("a,b", ("a", "b")),
        ("a, b", ("a", "b")),
        ("a b\tc", ("a", "b", "c")),
        (" a ,, b , ", ("a", "b")),  # empty pieces are dropped
        ("latest, feature/x", ("latest", BRANCH_TAG)),
        ("-", ("latest",)),  # empty after sanitising → latest
        (".hidden", ("hidden",)),  # leading '.' dropped
        ("x" * 200, ("x" * 128,)),  # cut to 128
    ],
)
def test_tag_lists(tag: str, tags: tuple[str, ...]) -> None:
    assert resolve_options(repository="acme/app", tag=tag).tags == tags


SCALAR_TAG_YML = """\
box: alpine
build:
  steps:
    - internal/docker-push:
        repository: acme/app
        tag: {}
"""


@pytest.mark.parametrize(
    ("written", "tags"),
    [
        ("1.10", ("1.10",)),  # Wercker: float → "" → pushed `latest`
        ("1.0", ("1.0",)),
        ("010", ("010",)),
        ("true", ("true",)),
        ("[1.10, latest]", ("1.10", "latest")),  # a list is joined with commas
    ],
)
def test_scalar_tags_are_kept_as_written(written: str, tags: tuple[str, ...]) -> None:
    """behaviour §6: `tag: 1.10` keeps the scalar's text (synthetic: not in the corpus)."""
    wf, problems = load_text(SCALAR_TAG_YML.format(written), "wercker.yml")
    assert wf is not None, [p.format() for p in problems]
    (step,) = wf.pipelines["build"].steps
    assert resolve(step).tags == tags
