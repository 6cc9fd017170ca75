"""``bot.wercker.checks``: the checks on one box or one step (unknown and retired options
with a did-you-mean, internal steps the bot cannot run, registry step ids, partial
credentials, tags, ports, shell words, box and service images, registry hosts), read through
``load_text`` as a user meets them."""

from __future__ import annotations

import pytest

from bot.wercker.checks import check_box, check_step, did_you_mean
from bot.wercker.model import BoxSpec, Loc, StepSpec
from tests.unit.wercker.helpers import loaded, only


def push(*lines: str, step: str = "internal/docker-push") -> str:
    body = "".join(f"        {line}\n" for line in lines)
    return f"build:\n  steps:\n    - {step}:\n{body}"


def test_unknown_option_did_you_mean() -> None:
    _, problems = loaded(push("repositry: acme/app"))
    problem = only(problems, "unknown option 'repositry'")
    assert problem.format() == (
        "wercker.yml:4:9: warning: unknown option 'repositry' in internal/docker-push; it is "
        "ignored; did you mean 'repository'?"
    )
    assert only(problems, "needs 'repository'").severity == "error"


def test_unknown_script_and_box_options() -> None:
    _, problems = loaded(
        "box: {id: x, usernme: u}\nbuild:\n  steps:\n    - script: {code: a, cod: b}\n"
    )
    assert only(problems, "'usernme' in box").hint == "did you mean 'username'?"
    assert only(problems, "'cod' in script").severity == "warning"


@pytest.mark.parametrize(
    "step",
    ["internal/store-container", "internal/publish-step", "internal/docker-pusj"],
)
def test_internal_steps_the_bot_cannot_run(step: str) -> None:
    _, problems = loaded(f"build:\n  steps:\n    - {step}\n")
    (problem,) = [p for p in problems if step in p.message]
    assert (problem.severity, problem.loc.line, problem.pipeline) == ("error", 3, "build")


def test_unknown_internal_step_suggests() -> None:
    _, problems = loaded("build:\n  steps:\n    - internal/docker-pusj\n")
    assert only(problems, "unknown internal step").hint == "did you mean 'internal/docker-push'?"


@pytest.mark.parametrize("step_id", ["npm-install", "wercker/add-ssh-key@1.0.2", "owner/name"])
def test_registry_steps_are_resolved_at_plan_time(step_id: str) -> None:
    # Issue 10: whether a registry step can run depends on the bot's [steps] sources and
    # its built-in library, so bot.plan decides (tests/unit/test_plan.py), not the lint.
    _, problems = loaded(f"build:\n  steps:\n    - {step_id}\n")
    assert problems == []


def test_shell_command_as_step_id() -> None:
    _, problems = loaded("build:\n  steps:\n    - npm test\n")
    hint = only(problems, "is not a step id").hint
    assert hint and "shell command" in hint


def test_partial_aws_names_the_missing() -> None:
    _, problems = loaded(push("repository: app", "aws-access-key: $K", "aws-region: us-east-1"))
    problem = only(problems, "Amazon ECR")
    assert problem.severity == "error"
    assert "missing aws-secret-key, aws-registry-id" in problem.message


def test_partial_azure() -> None:
    _, problems = loaded(push("repository: app", "azure-client-id: x"))
    assert "missing azure-client-secret" in only(problems, "Azure ACR").message


@pytest.mark.parametrize(
    ("ports", "bad"),
    [
        ("8080", None),
        ("80/tcp, 53/udp 9000", None),
        ("$PORT", None),
        ("80/sctp", "80/sctp"),
        ("0", "0"),
        ("70000", "70000"),
        ("3000:30", "3000:30"),
        ("http", "http"),
    ],
)
def test_ports_syntax(ports: str, bad: str | None) -> None:
    _, problems = loaded(push("repository: app", f"ports: '{ports}'"))
    found = [p for p in problems if "invalid port" in p.message]
    if bad is None:
        assert found == []
    else:
        assert found and f"'{bad}'" in found[0].message and found[0].severity == "error"


@pytest.mark.parametrize(
    ("option", "value", "needle"),
    [
        ("labels", "\"a=1 'Three word key'=v\"", None),
        ("labels", "org.label-schema.vcs-ref=$WERCKER_GIT_COMMIT", None),
        ("env", "\"foo=val1 bar='Three word value'\"", None),
        ("env", '"foo=1 bare"', "entry 'bare' is not of the form NAME=value"),
        ("labels", '"=v"', "is not of the form"),
        ("env", '"foo=\'unclosed"', "not valid shell words"),
        ("cmd", '"sh -c \'x"', "not valid shell words"),
    ],
)
def test_word_options_syntax(option: str, value: str, needle: str | None) -> None:
    _, problems = loaded(push("repository: app", f"{option}: {value}"))
    errors = [p for p in problems if p.severity == "error"]
    if needle is None:
        assert errors == []
    else:
        assert needle in only(errors, needle).message


def test_docker_build_needs_image_name() -> None:
    _, problems = loaded("build:\n  steps:\n    - internal/docker-build:\n        dockerfile: D\n")
    assert only(problems, "needs 'image-name'").severity == "error"


def test_clean_push_has_no_problems() -> None:
    _, problems = loaded(
        push(
            "repository: $DOCKER_REGISTRY/$DOCKER_REPO",
            "registry: https://$DOCKER_REGISTRY/v2",
            "username: $U",
            "password: $P",
            "tag: $WERCKER_GIT_BRANCH-$WERCKER_GIT_COMMIT",
            "working-dir: /pipeline/source",
            "ports: 8080",
            "cmd: sh target/bin/start",
            "disable-sync: true",
        )
    )
    assert problems == []


@pytest.mark.parametrize(
    ("tag", "bad"),
    [
        ("v1, latest", None),
        ("1.10", None),
        ("$WERCKER_GIT_BRANCH-$WERCKER_GIT_COMMIT", None),
        ("feature/x", "feature/x"),
        ("-x", "-x"),
        ("a" * 129, "a" * 129),
    ],
)
def test_tag_syntax(tag: str, bad: str | None) -> None:
    _, problems = loaded(push("repository: app", f"tag: '{tag}'"))
    found = [p for p in problems if "invalid tag" in p.message]
    assert [p.message for p in found] == ([] if bad is None else [f"invalid tag '{bad}' in 'tag'"])


def test_retired_options_explain() -> None:
    _, problems = loaded(push("repository: app", "force-tags: false"))
    assert "Wercker removed it" in (only(problems, "'force-tags'").hint or "")


BOX_WITH_EVERY_KEY = """\
box:
  id: acme/app
  tag: "1.0"
  registry: quay.io
  username: $U
  password: $P
  env:
    A: b
  cmd: /usr/bin/sudo -E /bin/bash
  entrypoint: /bin/sh -c
  ports: ["8080"]
  volumes: /tmp:/data
  url: file://../other
  name: app
  usrname: u
build:
  steps:
    - script: {code: 'true'}
"""


@pytest.mark.parametrize(
    ("key", "line", "hint"),
    [
        ("cmd", 9, "own shell"),
        ("entrypoint", 10, "own shell"),
        ("ports", 11, "--expose-ports"),
        ("volumes", 12, "--enable-volumes"),
        ("url", 13, "external services"),
    ],
)
def test_box_keys_the_bot_ignores_warn_at_the_key(key: str, line: int, hint: str) -> None:
    _, problems = loaded(BOX_WITH_EVERY_KEY)
    problem = only(problems, f"box option '{key}' is ignored")
    assert problem.severity == "warning" and problem.pipeline is None
    assert (problem.loc.line, problem.loc.col) == (line, 3)
    assert hint in (problem.hint or "")


def test_box_keys_the_bot_uses_do_not_warn() -> None:
    _, problems = loaded(BOX_WITH_EVERY_KEY)
    for key in ("id", "tag", "registry", "username", "password", "env"):
        assert not [p for p in problems if f"'{key}'" in p.message], key
    # name is a service key only; an unknown key gets a did-you-mean; nothing else is said
    assert only(problems, "unknown option 'name' in box").hint == "only a service has it"
    usrname = only(problems, "unknown option 'usrname' in box")
    assert (usrname.loc.line, usrname.hint) == (15, "did you mean 'username'?")
    assert len(problems) == 7, [p.format() for p in problems]


def test_crashcart_style_box_cmd_in_a_pipeline_box() -> None:
    _, problems = loaded(
        """\
        build-musl:
          box:
            id: ekidd/rust-musl-builder:stable
            cmd: /usr/bin/sudo -E /bin/bash
          steps:
            - script: {code: 'true'}
        """
    )
    problem = only(problems, "box option 'cmd' is ignored by wercker-bot")
    assert problem.format().startswith("wercker.yml:4:5: warning: ")
    assert problem.pipeline == "build-musl"


def test_service_keys_the_bot_ignores_warn_at_the_key() -> None:
    _, problems = loaded(
        """\
        services:
          - id: mongo
            name: db
            ports: ["27017"]
            pasword: x
        build:
          steps:
            - script: {code: 'true'}
        """
    )
    # Issue 10: services are started now, named by ``name``: it is no longer ignored.
    assert not [p for p in problems if "'name'" in p.message]
    assert only(problems, "service option 'ports' is ignored").loc.line == 4
    typo = only(problems, "unknown option 'pasword' in service")
    assert typo.hint == "did you mean 'password'?"


def test_box_port_alias_is_read_then_reported_as_ignored() -> None:
    _, problems = loaded("box:\n  id: x\n  port: 80\nbuild:\n  steps: [{script: {code: a}}]\n")
    assert only(problems, "'port' is read as 'ports'").loc.line == 3
    assert only(problems, "box option 'ports' is ignored").loc.line == 3


@pytest.mark.parametrize("cmd", ["/bin/sh", "/bin/bash", "bash"])
def test_box_cmd_naming_a_plain_shell_is_what_the_bot_does(cmd: str) -> None:
    text = f"box:\n  id: x\n  cmd: {cmd}\nbuild:\n  steps: [{{script: {{code: a}}}}]\n"
    _, problems = loaded(text)
    assert problems == []


def test_upper_case_box_image_is_an_error_at_the_id() -> None:
    _, problems = loaded("box: AllanCochrane/golang\nbuild:\n  steps: [{script: {code: a}}]\n")
    (problem,) = problems
    assert problem.format() == (
        "wercker.yml:1:6: error: box image 'AllanCochrane/golang' is not a valid image "
        "reference; repository names must be lower-case, e.g. allancochrane/golang"
    )
    assert problem.pipeline is None


def test_bad_box_image_in_a_pipeline_box_mapping_is_located_at_the_id_value() -> None:
    _, problems = loaded(
        """\
        build:
          box:
            username: u
            password: p
            id: Acme/App:1.0
          steps: [{script: {code: a}}]
        """
    )
    problem = only(problems, "box image 'Acme/App:1.0'")
    assert (problem.loc.line, problem.loc.col, problem.severity) == (5, 9, "error")
    assert problem.pipeline == "build" and problem.hint and problem.hint.endswith("acme/app:1.0")


@pytest.mark.parametrize(
    ("box", "needle"),
    [
        ("foo@sha256:zz", "is not a sha256 digest"),
        ("foo:-bad", "is not a valid tag"),
        ("acme//app", "not a valid repository path component"),
    ],
)
def test_malformed_box_images_are_errors(box: str, needle: str) -> None:
    _, problems = loaded(f"box: '{box}'\nbuild:\n  steps: [{{script: {{code: a}}}}]\n")
    (problem,) = problems
    assert problem.severity == "error" and needle in problem.message, problem.format()
    assert (problem.loc.line, problem.loc.col) == (1, 6)


@pytest.mark.parametrize(
    "box",
    [
        "box: $BOX_IMAGE",
        "box: acme/$NAME:1.0",
        "box: 127.0.0.1:5000/library/busybox:1.36",
        "box: Quay.IO/acme/app",  # the host is not case-sensitive
        "box: {id: 'acme/app:bad tag', tag: ok}",  # the tag option replaces it
    ],
)
def test_box_images_that_are_fine_or_known_only_at_run_time(box: str) -> None:
    _, problems = loaded(f"{box}\nbuild:\n  steps: [{{script: {{code: a}}}}]\n")
    assert [p for p in problems if p.severity == "error"] == []


def test_a_tag_option_does_not_hide_a_bad_repository_name() -> None:
    text = "box: {id: 'Acme/App:x', tag: $T}\nbuild:\n  steps: [{script: {code: a}}]\n"
    _, problems = loaded(text)
    assert only(problems, "box image 'Acme/App:x'").loc.col == 11


def test_service_images_are_checked_like_the_box_they_are_pulled() -> None:
    # Issue 10: services are pulled by the docker runner, so a bad image is found now.
    _, problems = loaded("services: [Mongo]\nbuild:\n  steps: [{script: {code: a}}]\n")
    problem = only(problems, "service image 'Mongo'")
    assert (problem.severity, problem.hint) == (
        "error",
        "repository names must be lower-case, e.g. mongo",
    )


# -- registries that are not what they look like --------------------------------------------


@pytest.mark.parametrize(
    "registry",
    [
        "https://dockerhub.com",
        "dockerhub.com",
        "https://www.dockerhub.com/v2",
        "www.docker.com",
        "https://docker-hub.com",
    ],
)
def test_a_registry_that_looks_like_docker_hub_warns(registry: str) -> None:
    _, problems = loaded(push("repository: acme/app", f"registry: {registry}"))
    problem = only(problems, "is not Docker Hub's registry")
    assert (problem.severity, problem.loc.line) == ("warning", 5)
    assert problem.hint and "leave 'registry' out" in problem.hint
    _, problems = loaded(f"box: {{id: acme/app, registry: '{registry}'}}\n" + push("repository: a"))
    assert only(problems, "is not Docker Hub's registry").loc.line == 1


@pytest.mark.parametrize(
    "registry",
    [
        "https://registry.hub.docker.com/v2",
        "https://index.docker.io/v1/",
        "hub.docker.com",
        "quay.io",
        "$REGISTRY",
        "https://docker.example.com",
    ],
)
def test_docker_hub_and_other_registries_do_not_warn(registry: str) -> None:
    _, problems = loaded(push("repository: acme/app", f"registry: {registry}"))
    assert not [p for p in problems if "Docker Hub" in p.message]


def test_wcr_io_without_credentials_warns() -> None:
    _, problems = loaded(push("repository: wcr.io/oracle/app"))
    problem = only(problems, "wcr.io was Wercker's hosted registry")
    assert (problem.severity, problem.loc.line) == ("warning", 4)
    _, problems = loaded(push("repository: oracle/app", "registry: https://wcr.io/v2"))
    assert only(problems, "wcr.io").loc.line == 5
    _, problems = loaded("box: wcr.io/acme/box:1\n" + push("repository: a"))
    assert only(problems, "wcr.io").loc == Loc("wercker.yml", 1, 6)


def test_wcr_io_with_credentials_or_elsewhere_does_not_warn() -> None:
    _, problems = loaded(push("repository: wcr.io/o/app", "username: $U", "password: $P"))
    assert not [p for p in problems if "wcr.io" in p.message]
    _, problems = loaded(push("repository: acme/wcr.io"))
    assert not [p for p in problems if "wcr.io" in p.message]


# -- the checks called directly, on specs built by hand ---------------------------------------

AT = Loc("wercker.yml", 3, 7)


def test_did_you_mean_offers_only_a_close_word() -> None:
    assert did_you_mean("repositry", {"repository", "registry"}) == "did you mean 'repository'?"
    assert did_you_mean("zzz", {"repository", "registry"}) is None


def test_check_step_tags_its_problems_with_the_pipeline_and_option_location() -> None:
    step = StepSpec(
        "internal/docker-push",
        AT,
        "push",
        options={"repository": "app", "ports": "http"},
        option_locs={"ports": Loc("wercker.yml", 5, 9)},
    )
    (problem,) = check_step(step, "deploy")
    assert (problem.message, problem.loc.line, problem.pipeline) == (
        "invalid port 'http' in 'ports'",
        5,
        "deploy",
    )
    assert check_step(StepSpec("internal/docker-push", AT, "p", {"repository": "a"}), "b") == []


def test_a_service_keeps_its_cmd_where_a_box_ignores_it() -> None:
    box = BoxSpec("mongo", AT, options={"cmd": "mongod --auth"})
    (problem,) = check_box(box, None)
    assert problem.message == "box option 'cmd' is ignored by wercker-bot"
    assert problem.loc == AT  # no option location: the box's own
    assert check_box(box, "build", service=True) == []

