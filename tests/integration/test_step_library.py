"""The built-in step library (``steps/library``), each step run through the real bot
(``wercker-bot run --runner local-unsafe``: plan resolution to the built-in package, then
``steps/package.py``'s runtime) on this host.

Tools the host has (bash, cp, ssh-keygen, ssh-keyscan, curl, python3 + venv, npm, kubectl,
shellcheck when installed) run for real; tools it lacks (apt-get as a target, bundle, gem,
glide, golint, pip as a target) are fake executables on ``PATH`` that record their argv
(``tests.harness.step_library.ToolBin``). Each step's clear failure when its tool is absent
runs with a ``PATH`` of the host's basic tools only. Network steps talk to loopback fakes
(GitHub's releases API, a Slack webhook) or moto's S3; nothing leaves the machine.
"""

from __future__ import annotations

import io
import json
import shutil
import socket
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.harness.step_library import (
    BotRun,
    ReleasesFake,
    SlackFake,
    ToolBin,
    cache_dir,
    run_wercker,
)


def pipeline(*steps: str, after: str = "") -> str:
    """A wercker.yml whose build pipeline has ``steps`` (YAML text, indented 4)."""
    text = "box: debian\nbuild:\n  steps:\n" + "".join(steps)
    if after:
        text += "  after-steps:\n" + after
    return text


def script(code: str, name: str = "check") -> str:
    body = "".join(f"          {line}\n" for line in code.strip().splitlines())
    return f"    - script:\n        name: {name}\n        code: |\n{body}"


def passed(run: BotRun) -> None:
    assert run.code == 0, run.output


def failed_with(run: BotRun, text: str) -> str:
    """Asserts the build failed and the failing step's message (the status) contains text."""
    assert run.code == 1, run.output
    line = run.line_with(": failed, exit")
    assert text in line, run.output
    return line


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def minimal(tmp_path: Path, *tools: str) -> ToolBin:
    """A ``PATH`` directory with the host's basic tools and ``tools`` only."""
    return ToolBin(tmp_path / "minbin", only_host_tools=tools)


# -- install-packages ------------------------------------------------------------------------

APT_OK = 'case " $* " in *" install "*) exit 0;; esac'


def test_install_packages_caches_the_lists_and_updates_once_a_day(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("apt-get", APT_OK)
    step = "    - install-packages:\n        packages: curl unzip\n"
    passed(run_wercker(tmp_path, pipeline(step), path=[tools.dir]))
    lists = cache_dir(tmp_path) / "wercker" / "apt-lists"
    opt = ["-o", f"Dir::State::Lists={lists}"]
    assert tools.calls("apt-get") == [[*opt, "update"], [*opt, "install", "-y", "curl", "unzip"]]
    assert (lists / "partial").is_dir()
    assert (cache_dir(tmp_path) / "wercker" / "aptupdated").is_file()
    # A second build within the day reuses the cached lists: no apt-get update.
    passed(run_wercker(tmp_path, pipeline(step), path=[tools.dir]))
    assert [c[2] for c in tools.calls("apt-get")] == ["update", "install", "install"]


def test_install_packages_retries_three_times_clearing_the_cache(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("apt-get", 'case " $* " in *" install "*) exit 100;; esac')
    run = run_wercker(
        tmp_path,
        pipeline("    - install-packages:\n        packages: nosuchpkg\n"),
        path=[tools.dir],
    )
    failed_with(run, "Retry exceeds max retries")
    # clear-cache (default true) drops the stamp: each attempt updates the lists again.
    assert [c[2] for c in tools.calls("apt-get")] == ["update", "install"] * 3


def test_install_packages_keeps_the_cache_with_clear_cache_false(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("apt-get", 'case " $* " in *" install "*) exit 100;; esac')
    step = "    - install-packages:\n        packages: x\n        clear-cache: false\n"
    failed_with(run_wercker(tmp_path, pipeline(step), path=[tools.dir]), "failed 3 times")
    assert [c[2] for c in tools.calls("apt-get")] == ["update", "install", "install", "install"]


def test_install_packages_without_apt_get_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    step = "    - install-packages:\n        packages: curl\n"
    run = run_wercker(tmp_path, pipeline(step), path=[tools.dir], host_path=False)
    failed_with(run, "apt-get is not in this box")


# -- npm-install / npm-test ------------------------------------------------------------------


def test_npm_install_passes_options_and_caches(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    seen = tmp_path / "seen-cache"
    tools.fake("npm", f"echo \"$npm_config_cache\" > '{seen}'")
    step = "    - npm-install:\n        options: --production --no-audit\n"
    run = run_wercker(
        tmp_path, pipeline(step, script('echo "cache=$npm_config_cache"')), path=[tools.dir]
    )
    passed(run)
    assert tools.calls("npm") == [["install", "--production", "--no-audit"]]
    npm_cache = cache_dir(tmp_path) / "wercker" / "npm"
    assert seen.read_text().strip() == str(npm_cache)
    assert f"cache={npm_cache}" in run.output  # later steps use the same cache


def test_npm_install_retries_and_clears_the_cache(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    count = tmp_path / "count"
    tools.fake(
        "npm",
        f"""
        [ "$1" = install ] || exit 0
        echo x >> '{count}'
        [ "$(wc -l < '{count}')" -ge 3 ]""",
    )
    passed(run_wercker(tmp_path, pipeline("    - npm-install\n"), path=[tools.dir]))
    assert tools.calls("npm") == [
        ["install"],
        ["cache", "clean", "--force"],
        ["install"],
        ["cache", "clean", "--force"],
        ["install"],
    ]
    assert (cache_dir(tmp_path) / "wercker" / "npm" / ".keep").is_file()


def test_npm_install_fails_after_three_attempts(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("npm", '[ "$1" = install ] && exit 1; exit 0')
    step = "    - npm-install:\n        use-cache: false\n"
    run = run_wercker(tmp_path, pipeline(step), path=[tools.dir])
    failed_with(run, "npm install failed 3 times")
    assert tools.calls("npm") == [["install"]] * 3  # no cache: nothing to clean


def test_npm_steps_without_npm_say_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    for step in ("npm-install", "npm-test"):
        run = run_wercker(tmp_path, pipeline(f"    - {step}\n"), path=[tools.dir], host_path=False)
        failed_with(run, f"{step}: npm is not in this box")


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm")
def test_npm_install_and_npm_test_with_real_npm(tmp_path: Path) -> None:
    package = {"name": "demo", "version": "1.0.0", "scripts": {"test": "node check.js"}}
    files = {"package.json": json.dumps(package), "check.js": "process.exit(0)\n"}
    step = "    - npm-install:\n        options: --offline --no-audit --no-fund\n    - npm-test\n"
    passed(run_wercker(tmp_path, pipeline(step), files=files))
    files["check.js"] = "process.exit(3)\n"
    run = run_wercker(tmp_path, pipeline("    - npm-test\n"), files=files)
    failed_with(run, "npm test failed")


# -- virtualenv / pip-install ----------------------------------------------------------------


def demo_wheel() -> bytes:
    """A minimal pure-Python wheel ``demo 1.0`` (module ``demo``)."""
    buffer = io.BytesIO()
    info = "demo-1.0.dist-info"
    with zipfile.ZipFile(buffer, "w") as wheel:
        wheel.writestr("demo/__init__.py", "ANSWER = 42\n")
        wheel.writestr(f"{info}/METADATA", "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\n")
        wheel.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        wheel.writestr(f"{info}/RECORD", "")
    return buffer.getvalue()


def host_python() -> str:
    """A python3 with venv support, outside any virtualenv."""
    return str(Path(sys.base_exec_prefix) / "bin" / "python3")


def test_virtualenv_and_pip_install_for_real(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {
        "wheels/demo-1.0-py3-none-any.whl": demo_wheel(),
        "requirements.txt": "demo==1.0\n",
    }
    steps = (
        f"    - virtualenv:\n        python_location: {host_python()}\n"
        "        install_wheel: false\n"
        "    - pip-install:\n        extra_args: --no-index --find-links wheels\n"
        + script(
            'echo "venv=$VIRTUAL_ENV links=$PIP_FIND_LINKS"\n'
            "python -c \"import demo; print('answer', demo.ANSWER)\""
        )
    )
    run = run_wercker(tmp_path, pipeline(steps), files=files)
    passed(run)
    assert "answer 42" in run.output
    line = run.line_with("venv=")
    assert "/home/venv " in line  # $HOME/venv, active in the later step
    assert f"links={cache_dir(tmp_path) / 'pip-download-cache'}" in line


def test_virtualenv_install_wheel_offline_fails_clearly(tmp_path: Path) -> None:
    steps = f"    - virtualenv:\n        python_location: {host_python()}\n"
    env = {
        "PIP_INDEX_URL": f"http://127.0.0.1:{closed_port()}/simple",
        "PIP_RETRIES": "0",
        "PIP_TIMEOUT": "2",
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    run = run_wercker(tmp_path, pipeline(steps), env=env)
    failed_with(run, "set install_wheel: false")


def test_virtualenv_without_python_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(tmp_path, pipeline("    - virtualenv\n"), path=[tools.dir], host_path=False)
    failed_with(run, "there is no python in this box")


def test_pip_install_builds_wheels_first_in_a_wheel_virtualenv(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("pip")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "old.whl").write_text("x")
    env = {"PIP_USE_WHEEL": "true", "PIP_WHEEL_DIR": str(wheels)}
    step = (
        "    - pip-install:\n        packages_list: flask==3.0 six\n"
        "        extra_args: --quiet\n        extra_wheel_args: --no-deps\n"
        "        cleanup_wheel_dir: true\n"
    )
    files = {"requirements.txt": "requests\n"}
    passed(run_wercker(tmp_path, pipeline(step), files=files, env=env, path=[tools.dir]))
    args = ["-r", "requirements.txt", "flask==3.0", "six"]
    assert tools.calls("pip") == [["wheel", *args, "--no-deps"], ["install", *args, "--quiet"]]
    assert not (wheels / "old.whl").exists()


def test_pip_install_needs_the_requirements_file(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("pip")
    run = run_wercker(tmp_path, pipeline("    - pip-install\n"), path=[tools.dir])
    failed_with(run, "requirements file requirements.txt not found")
    assert tools.calls("pip") == []
    step = '    - pip-install:\n        requirements_file: ""\n        packages_list: six\n'
    passed(run_wercker(tmp_path, pipeline(step), path=[tools.dir]))
    assert tools.calls("pip") == [["install", "six"]]


def test_pip_install_without_pip_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    step = "    - pip-install:\n        pip_command: pip3\n"
    run = run_wercker(tmp_path, pipeline(step), path=[tools.dir], host_path=False)
    failed_with(run, "pip3 is not in this box")


# -- bundle-install / glide-install ---------------------------------------------------------


def test_bundle_install_builds_the_command_line(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("bundle", 'echo "BUNDLE_PATH=$BUNDLE_PATH"')
    step = (
        "    - bundle-install:\n        deployment: true\n        frozen: yes\n"
        "        binstubs: maybe\n        without: test development\n        jobs: 4\n"
    )
    run = run_wercker(
        tmp_path,
        pipeline(step, script('echo "later=$BUNDLE_PATH"')),
        files={"Gemfile": "source 'x'\n"},
        path=[tools.dir],
    )
    passed(run)
    gems = f"{cache_dir(tmp_path)}/bundle-install/"
    assert tools.calls("bundle") == [
        ["--version"],
        [
            "install",
            "--gemfile=Gemfile",
            "--deployment",
            "--frozen",
            "--without=test development",
            "--jobs=4",
            "--retry",
            "3",
        ],
    ]
    assert f"BUNDLE_PATH={gems}" in run.output
    assert f"later={gems}" in run.output


def test_bundle_install_without_a_gemfile_skips(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("bundle")
    run = run_wercker(tmp_path, pipeline("    - bundle-install\n"), path=[tools.dir])
    passed(run)
    assert "Skipping bundle install" in run.output
    assert tools.calls("bundle") == []


def test_bundle_install_installs_bundler_then_retries_clearing_the_path(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    bundle_script = '[ "$1" = --version ] && exit 0; mkdir -p "$BUNDLE_PATH/x"; exit 5'
    tools.fake(
        "gem",
        f"cat > '{tools.dir}/bundle' <<'EOF'\n#!/bin/sh\n"
        f"{{ printf bundle; for a; do printf '\\037%s' \"$a\"; done; echo; }} >> '{tools.log}'\n"
        f"{bundle_script}\nEOF\nchmod +x '{tools.dir}/bundle'",
    )
    step = "    - bundle-install:\n        path: gems\n        version: 2.5.0\n"
    run = run_wercker(tmp_path, pipeline(step), files={"Gemfile": ""}, path=[tools.dir])
    failed_with(run, "bundle install failed 3 times")
    assert tools.calls("gem") == [["install", "bundler", "--no-document", "--version", "2.5.0"]]
    assert len([c for c in tools.calls("bundle") if c[0] == "install"]) == 3
    assert "gems go to gems" in run.output


def test_bundle_install_without_ruby_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(
        tmp_path,
        pipeline("    - bundle-install\n"),
        files={"Gemfile": ""},
        path=[tools.dir],
        host_path=False,
    )
    failed_with(run, "neither bundle nor gem is in this box")


def test_glide_install(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("glide", '[ "$1" = --version ] && echo "glide version v0.13.3"; exit 0')
    run = run_wercker(tmp_path, pipeline("    - glide-install\n"), path=[tools.dir])
    passed(run)
    assert tools.calls("glide") == [["--version"], ["install"]]
    tools.fake("glide", '[ "$1" = install ] && exit 1; exit 0')
    failed_with(
        run_wercker(tmp_path, pipeline("    - glide-install\n"), path=[tools.dir]),
        "glide install failed",
    )
    tools = minimal(tmp_path)
    run = run_wercker(
        tmp_path, pipeline("    - glide-install\n"), path=[tools.dir], host_path=False
    )
    failed_with(run, "glide is not in this box")


# -- setup-go-workspace ----------------------------------------------------------------------


def test_setup_go_workspace_moves_the_source_dir(tmp_path: Path) -> None:
    gopath = tmp_path / "go"
    steps = (
        "    - wercker/setup-go-workspace:\n        package-dir: github.com/acme/tool\n"
        + script('echo "pwd=$(pwd) src=$WERCKER_SOURCE_DIR"; cat main.go')
    )
    run = run_wercker(
        tmp_path, pipeline(steps), files={"main.go": "package main\n"}, env={"GOPATH": str(gopath)}
    )
    passed(run)
    target = gopath / "src" / "github.com" / "acme" / "tool"
    assert f"pwd={target} src={target}" in run.output
    assert (target / "main.go").read_text() == "package main\n"


def test_setup_go_workspace_defaults_to_the_repository_path(tmp_path: Path) -> None:
    gopath = tmp_path / "go"
    run = run_wercker(tmp_path, pipeline("    - setup-go-workspace\n"), env={"GOPATH": str(gopath)})
    passed(run)
    assert (gopath / "src" / "github.com" / "local" / "project" / "wercker.yml").is_file()


def test_setup_go_workspace_without_gopath_says_so(tmp_path: Path) -> None:
    run = run_wercker(tmp_path, pipeline("    - setup-go-workspace\n"))
    failed_with(run, "no GOPATH")


# -- add-ssh-key / add-to-known_hosts -------------------------------------------------------


def test_add_ssh_key_writes_the_key_and_the_ssh_config(tmp_path: Path) -> None:
    steps = "    - add-ssh-key:\n        keyname: DEPLOY\n        host: git.example.com\n" + script(
        'cat "$HOME/.ssh/config"; key=$(sed -n "s/ *IdentityFile //p" "$HOME/.ssh/config")\n'
        'echo "mode=$(stat -c %a "$key")"; cat "$key"'
    )
    key = "-----BEGIN KEY-----\\nAAAA\\n-----END KEY-----"
    run = run_wercker(tmp_path, pipeline(steps), env={"DEPLOY_PRIVATE": key})
    passed(run)
    assert "Host git.example.com" in run.output
    assert "mode=600" in run.output
    assert "-----BEGIN KEY-----\nAAAA\n-----END KEY-----" in run.output


def test_add_ssh_key_explains_a_wrong_keyname(tmp_path: Path) -> None:
    step = "    - add-ssh-key:\n        keyname: DEPLOY_PRIVATE\n"
    failed_with(run_wercker(tmp_path, pipeline(step)), "give the name without the suffix")
    step = "    - add-ssh-key:\n        keyname: MISSING\n"
    failed_with(run_wercker(tmp_path, pipeline(step)), "$MISSING_PRIVATE is empty or unset")


@pytest.fixture
def host_key(tmp_path: Path) -> tuple[str, str, str]:
    """(known_hosts line as ssh-keyscan prints it, SHA256 fingerprint, MD5 fingerprint)."""
    key = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    line = "git.example.com " + " ".join(key.with_suffix(".pub").read_text().split()[:2])
    sha = subprocess.run(
        ["ssh-keygen", "-l", "-f", f"{key}.pub"], capture_output=True, text=True, check=True
    ).stdout.split()[1]
    md5 = subprocess.run(
        ["ssh-keygen", "-l", "-E", "md5", "-f", f"{key}.pub"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[1]
    return line, sha.removeprefix("SHA256:"), md5.removeprefix("MD5:")


KNOWN = script('echo "known:"; cat "$HOME/.ssh/known_hosts"')


def known_hosts_step(**options: str) -> str:
    lines = "".join(f"        {k}: {v}\n" for k, v in options.items())
    head = "    - add-to-known_hosts:\n        hostname: git.example.com\n        local: true\n"
    return head + lines


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_add_to_known_hosts_checks_the_fingerprint(
    tmp_path: Path, host_key: tuple[str, str, str]
) -> None:
    line, sha, md5 = host_key
    tools = ToolBin(tmp_path / "bin")
    tools.fake("ssh-keyscan", f"echo '# git.example.com:22 SSH-2.0-test'; echo '{line}'")
    step = known_hosts_step(fingerprint=sha, port="2222", timeout="5", type="ed25519")
    run = run_wercker(tmp_path, pipeline(step, KNOWN), path=[tools.dir])
    passed(run)
    assert tools.calls("ssh-keyscan") == [
        ["-t", "ed25519", "-T", "5", "-p", "2222", "git.example.com"]
    ]
    assert line in run.output.split("known:", 1)[1]
    # An MD5 fingerprint in the old aa:bb form matches without use-md5.
    run = run_wercker(
        tmp_path, pipeline(known_hosts_step(fingerprint=md5), KNOWN), path=[tools.dir]
    )
    passed(run)
    assert "1 key(s) of git.example.com added" in run.output


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
def test_add_to_known_hosts_mismatch_warns_and_adds_nothing(
    tmp_path: Path, host_key: tuple[str, str, str]
) -> None:
    line, _, _ = host_key
    tools = ToolBin(tmp_path / "bin")
    tools.fake("ssh-keyscan", f"echo '{line}'")
    step = known_hosts_step(fingerprint="nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8")
    run = run_wercker(tmp_path, pipeline(step, KNOWN), path=[tools.dir])
    passed(run)  # as in Wercker: a mismatch is a warning
    assert "no key of git.example.com matches the fingerprint" in run.output
    assert line not in run.output.split("known:", 1)[1]
    # Without a fingerprint every key is added, with a warning.
    run = run_wercker(tmp_path, pipeline(known_hosts_step(), KNOWN), path=[tools.dir])
    passed(run)
    assert "without checking them" in run.output
    assert line in run.output.split("known:", 1)[1]


@pytest.mark.skipif(shutil.which("ssh-keyscan") is None, reason="needs ssh-keyscan")
def test_add_to_known_hosts_unreachable_host_fails(tmp_path: Path) -> None:
    step = (
        "    - add-to-known_hosts:\n        hostname: 127.0.0.1\n        local: true\n"
        f"        port: {closed_port()}\n        timeout: 3\n"
    )
    failed_with(run_wercker(tmp_path, pipeline(step)), "the host is unreachable from this box")


def test_add_to_known_hosts_without_ssh_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(tmp_path, pipeline(known_hosts_step()), path=[tools.dir], host_path=False)
    failed_with(run, "install-packages: openssh-client")


# -- create-file / bash-template -------------------------------------------------------------


def test_create_file_writes_the_content(tmp_path: Path) -> None:
    steps = (
        '    - create-file:\n        filename: conf/app.cfg\n        content: "a=1\\nb=$B"\n'
        + script("cat conf/app.cfg; echo end")
    )
    run = run_wercker(tmp_path, pipeline(steps), files={"conf/.keep": ""}, env={"B": "two"})
    passed(run)
    assert "a=1\nb=two\nend" in run.output


def test_create_file_from_a_multiline_variable_hidden_from_the_log(tmp_path: Path) -> None:
    steps = (
        "    - create-file:\n        filename: ca.pem\n        content: $CA_PEM\n"
        "        hide-from-log: true\n" + script("wc -l < ca.pem")
    )
    pem = "-----BEGIN CERTIFICATE-----\nTOPSECRETBYTES\n-----END CERTIFICATE-----"
    run = run_wercker(tmp_path, pipeline(steps), env={"CA_PEM": pem})
    passed(run)
    assert "TOPSECRETBYTES" not in run.output
    assert run.line_with("created ca.pem")


def test_create_file_refuses_to_overwrite_unless_asked(tmp_path: Path) -> None:
    files = {"out.txt": "old\n"}
    step = "    - create-file:\n        filename: out.txt\n        content: new\n"
    failed_with(run_wercker(tmp_path, pipeline(step), files=files), "set overwrite: true")
    step += "        overwrite: true\n"
    run = run_wercker(tmp_path, pipeline(step, script("cat out.txt")), files=files)
    passed(run)
    assert "\nnew\n" in run.output


def test_create_file_in_a_missing_directory_fails(tmp_path: Path) -> None:
    step = "    - create-file:\n        filename: nodir/x\n        content: y\n"
    failed_with(run_wercker(tmp_path, pipeline(step)), "does its directory exist?")


def test_bash_template_renders_exported_variables_and_commands(tmp_path: Path) -> None:
    files = {
        "kubernetes.yml.template": "image: ${IMAGE}:$TAG\nhost: $(echo computed)\n",
        "deploy/a.conf.template": "name=$NAME\n",
    }
    steps = (
        "    - bash-template\n"
        "    - bash-template:\n        input: deploy/*.template\n        output: out/\n"
        + script("cat kubernetes.yml; cat out/deploy/a.conf")
    )
    env = {"IMAGE": "reg/app", "TAG": "v1", "NAME": "svc"}
    run = run_wercker(tmp_path, pipeline(steps), files={**files, "out/deploy/.keep": ""}, env=env)
    passed(run)
    assert "image: reg/app:v1\nhost: computed\nname=svc" in run.output


def test_bash_template_error_on_empty(tmp_path: Path) -> None:
    files = {"a.template": "x=$UNDEFINED_THING\n"}
    passed(run_wercker(tmp_path, pipeline("    - bash-template\n"), files=files))
    step = "    - bash-template:\n        error-on-empty: true\n"
    failed_with(run_wercker(tmp_path, pipeline(step), files=files), "UNDEFINED_THING")


# -- shellcheck / golint ---------------------------------------------------------------------


def test_shellcheck_builds_the_command_line(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("shellcheck", '[ "$1" = --version ] && echo "version: 0.9.0"; exit 0')
    step = (
        '    - shellcheck:\n        files: "a.sh|lib/*.sh"\n        separator: "|"\n'
        "        exclude: SC2086,SC2034\n        format: gcc\n        shell: bash\n"
    )
    files = {"a.sh": "", "lib/b.sh": "", "lib/c.sh": ""}
    passed(run_wercker(tmp_path, pipeline(step), files=files, path=[tools.dir]))
    assert tools.calls("shellcheck")[1] == [
        "--exclude=SC2086,SC2034",
        "--format=gcc",
        "--shell=bash",
        "a.sh",
        "lib/b.sh",
        "lib/c.sh",
    ]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="needs shellcheck")
def test_shellcheck_findings_fail_the_step(tmp_path: Path) -> None:
    files = {"good.sh": '#!/bin/sh\necho "$1"\n', "bad.sh": "#!/bin/sh\necho $1\n"}
    step = "    - shellcheck:\n        files: good.sh\n"
    passed(run_wercker(tmp_path, pipeline(step), files=files))
    run = run_wercker(tmp_path, pipeline("    - shellcheck\n"), files=files)
    failed_with(run, "findings in the checked scripts")
    assert "SC2086" in run.output


def test_shellcheck_without_shellcheck_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(tmp_path, pipeline("    - shellcheck\n"), path=[tools.dir], host_path=False)
    failed_with(run, "shellcheck is not in this box")


def golint_printing(tools: ToolBin, count: int) -> None:
    lines = "".join(
        f"echo 'pkg/f{i}.go:1:1: exported X should have comment'; " for i in range(count)
    )
    tools.fake("golint", lines + "echo 'vendor/x.go:1:1: noise'")


def test_golint_thresholds(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    golint_printing(tools, 3)
    step = "    - golint:\n        exclude: ^vendor\n"
    run = run_wercker(
        tmp_path, pipeline(step, script("wc -l < lint_results.txt")), path=[tools.dir]
    )
    passed(run)
    assert tools.calls("golint") == [["./..."]]
    assert "You are fairly tidy: 3 lint warnings." in run.output
    golint_printing(tools, 6)
    run = run_wercker(tmp_path, pipeline(step), path=[tools.dir])
    passed(run)
    assert "You should be tidying soon: 6 lint warnings." in run.output
    golint_printing(tools, 10)
    failed_with(
        run_wercker(tmp_path, pipeline(step), path=[tools.dir]),
        "Time to tidy up: 10 lint warnings.",
    )
    # Without exclude the vendor line counts too; the thresholds can be set.
    golint_printing(tools, 1)
    step = '    - golint:\n        threshold-warn: "1"\n        threshold-fail: "2"\n'
    failed_with(run_wercker(tmp_path, pipeline(step), path=[tools.dir]), "2 lint warnings")


def test_golint_without_golint_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(tmp_path, pipeline("    - golint\n"), path=[tools.dir], host_path=False)
    failed_with(run, "golint is not in this box")


# -- github-create-release / github-upload-asset ---------------------------------------------

TOKEN = "ghp_s3cretT0ken"


def release_steps(api: str, **extra: str) -> str:
    lines = "".join(f"        {k}: {v}\n" for k, v in extra.items())
    return (
        "    - github-create-release:\n        token: $GITHUB_TOKEN\n        tag: v$VERSION\n"
        f"        api_url: {api}\n{lines}"
    )


def upload_step(api: str, **extra: str) -> str:
    lines = "".join(f"        {k}: {v}\n" for k, v in extra.items())
    return (
        "    - github-upload-asset:\n        token: $GITHUB_TOKEN\n"
        f"        file: dist/app.tar.gz\n        upload_url: {api}\n{lines}"
    )


def test_release_then_upload_with_the_exported_ids(tmp_path: Path) -> None:
    files = {"dist/app.tar.gz": b"\x1f\x8b binary \x00 bytes"}
    env = {"GITHUB_TOKEN": TOKEN, "VERSION": "1.2.0", "NOTES": 'Fixed "quotes"\nand lines'}
    with ReleasesFake(TOKEN) as github:
        steps = (
            release_steps(github.url, title='"Release $VERSION"', body="$NOTES", draft="false")
            + upload_step(
                github.url, filename='"app linux.tar.gz"', **{"content-type": "application/gzip"}
            )
            + script('echo "ids $WERCKER_GITHUB_CREATE_RELEASE_ID $WERCKER_GITHUB_UPLOAD_ASSET_ID"')
        )
        run = run_wercker(tmp_path, pipeline(steps), files=files, env=env)
    passed(run)
    create, upload = github.requests
    assert create.path == "/repos/local/project/releases"
    assert create.headers["authorization"] == f"token {TOKEN}"
    body = create.json()
    commit = subprocess.run(
        ["git", "-C", str(tmp_path / "project"), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert body == {
        "tag_name": "v1.2.0",
        "target_commitish": commit,
        "name": "Release 1.2.0",
        "body": 'Fixed "quotes"\nand lines',
        "draft": False,
    }
    assert upload.path == "/repos/local/project/releases/4200/assets"
    assert upload.query == {"name": ["app linux.tar.gz"]}
    assert upload.headers["authorization"] == f"token {TOKEN}"
    assert upload.headers["content-type"] == "application/gzip"
    assert upload.body == files["dist/app.tar.gz"]
    assert "ids 4200 9100" in run.output
    assert TOKEN not in run.output


def test_release_ids_are_read_without_jq_or_python(tmp_path: Path) -> None:
    tools = minimal(tmp_path, "curl", "file")
    env = {"GITHUB_TOKEN": TOKEN, "VERSION": "2.0.0"}
    with ReleasesFake(TOKEN) as github:
        steps = (
            release_steps(github.url, export_id="RELEASE")
            + upload_step(github.url, release_id="$RELEASE")
            + script('echo "ids $RELEASE $WERCKER_GITHUB_UPLOAD_ASSET_ID"')
        )
        run = run_wercker(
            tmp_path,
            pipeline(steps),
            files={"dist/app.tar.gz": "tgz"},
            env=env,
            path=[tools.dir],
            host_path=False,
        )
    passed(run)
    assert "ids 4200 9100" in run.output
    assert github.requests[1].headers["content-type"] == "text/plain"  # from `file`


def test_release_http_errors_fail_with_github_message(tmp_path: Path) -> None:
    env = {"GITHUB_TOKEN": TOKEN, "VERSION": "1.0.0"}
    with ReleasesFake(TOKEN) as github:
        passed(run_wercker(tmp_path, pipeline(release_steps(github.url)), env=env))
        run = run_wercker(tmp_path, pipeline(release_steps(github.url)), env=env)
        failed_with(run, "GitHub answered HTTP 422: Validation Failed")
        run = run_wercker(
            tmp_path,
            pipeline(release_steps(github.url, tag="v9")),
            env={**env, "GITHUB_TOKEN": "wrong"},
        )
        failed_with(run, "GitHub answered HTTP 401: Bad credentials")
        run = run_wercker(
            tmp_path,
            pipeline(upload_step(github.url, release_id="77")),
            files={"dist/app.tar.gz": "x"},
            env=env,
        )
        failed_with(run, "GitHub answered HTTP 404")


def test_release_validation_and_unreachable_api(tmp_path: Path) -> None:
    env = {"GITHUB_TOKEN": TOKEN, "VERSION": "1.0.0"}
    run = run_wercker(tmp_path, pipeline(release_steps("http://x", draft="maybe")), env=env)
    failed_with(run, "draft must be true or false")
    api = f"http://127.0.0.1:{closed_port()}"
    failed_with(run_wercker(tmp_path, pipeline(release_steps(api)), env=env), "cannot reach")
    run = run_wercker(tmp_path, pipeline(upload_step(api)), files={"dist/app.tar.gz": "x"}, env=env)
    failed_with(run, "run github-create-release earlier in this pipeline, or set release_id")


def test_release_without_curl_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(
        tmp_path,
        pipeline(release_steps("http://x")),
        env={"GITHUB_TOKEN": TOKEN, "VERSION": "1"},
        path=[tools.dir],
        host_path=False,
    )
    failed_with(run, "curl is not in this box")


# -- slack-notifier --------------------------------------------------------------------------


def test_slack_notifier_posts_passed_and_failed_builds(tmp_path: Path) -> None:
    with SlackFake() as slack:
        notify = (
            "    - slack-notifier:\n        url: $SLACK_URL\n        channel: builds\n"
            "        username: cibot\n"
        )
        env = {"SLACK_URL": slack.webhook}
        passed(run_wercker(tmp_path, pipeline(script("true"), after=notify), env=env))
        failing = script("exit 3", name="unit tests")
        run = run_wercker(tmp_path, pipeline(failing, after=notify), env=env)
        assert run.code == 1, run.output
    ok, bad = slack.payloads()
    assert ok["channel"] == "#builds" and ok["username"] == "cibot"
    attachment = ok["attachments"][0]
    assert attachment["color"] == "good"
    assert attachment["text"].startswith("<http://")
    assert "|build> for project by" in attachment["text"]
    assert attachment["text"].endswith("has passed on branch main")
    attachment = bad["attachments"][0]
    assert attachment["color"] == "danger"
    assert attachment["text"].endswith("has failed on branch main at step: unit tests")
    assert slack.webhook not in run.output


def test_slack_notifier_takes_pretty_slack_notify_options(tmp_path: Path) -> None:
    with SlackFake() as slack:
        notify = (
            "    - slack-notifier:\n        webhook_url: $SLACK_WEBHOOK_URL\n"
            "        notify_on: failed\n        branches: ^(main|release/.*)$\n"
            "        failed_message: 'please look'\n"
        )
        env = {"SLACK_WEBHOOK_URL": slack.webhook}
        run = run_wercker(tmp_path, pipeline(script("true"), after=notify), env=env)
        passed(run)
        assert "not notifying: the result is passed" in run.output
        run = run_wercker(tmp_path, pipeline(script("false"), after=notify), env=env)
        assert run.code == 1, run.output
        other = notify.replace("^(main|release/.*)$", "^release/")
        run = run_wercker(tmp_path, pipeline(script("false"), after=other), env=env)
        assert "does not match ^release/" in run.output
    (only,) = slack.payloads()
    assert only["username"] == "werckerbot"
    assert only["attachments"][0]["text"].endswith("please look")


def test_slack_notifier_failures(tmp_path: Path) -> None:
    failed_with(
        run_wercker(tmp_path, pipeline("    - slack-notifier\n")), "set url (or webhook_url)"
    )
    with SlackFake() as slack:
        step = f"    - slack-notifier:\n        url: {slack.url}/services/gone\n"
        failed_with(run_wercker(tmp_path, pipeline(step)), "Slack answered HTTP 404: no_service")
    step = f"    - slack-notifier:\n        url: http://127.0.0.1:{closed_port()}/hook\n"
    failed_with(run_wercker(tmp_path, pipeline(step)), "cannot reach the Slack webhook")


# -- s3sync ----------------------------------------------------------------------------------


def boto3_python(tools: ToolBin) -> None:
    """python3 on PATH is the test's own interpreter, which has boto3."""
    tools.wrap("python3", sys.executable)


def s3sync_step(endpoint: str, bucket_url: str, **extra: str) -> str:
    lines = "".join(f"        {k}: {v}\n" for k, v in extra.items())
    return (
        "    - s3sync:\n        key-id: $AWS_ACCESS_KEY_ID\n"
        "        key-secret: $AWS_SECRET_ACCESS_KEY\n"
        f"        bucket-url: {bucket_url}\n        source-dir: site\n"
        f"        endpoint_url: {endpoint}\n        region: us-east-1\n{lines}"
    )


S3_ENV = {"AWS_ACCESS_KEY_ID": "AKIATESTING", "AWS_SECRET_ACCESS_KEY": "testing-secret"}


def test_s3sync_uploads_changes_and_deletes_removed_files(tmp_path: Path, moto_ecr: object) -> None:
    import boto3

    endpoint = moto_ecr.endpoint_url  # type: ignore[attr-defined]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="y",
    )
    s3.create_bucket(Bucket="sitebucket")
    s3.put_object(Bucket="sitebucket", Key="main/stale.html", Body=b"old")
    tools = ToolBin(tmp_path / "bin")
    boto3_python(tools)
    files = {"site/index.html": "<h1>hi</h1>", "site/css/a.css": "a{}"}
    step = s3sync_step(endpoint, "s3://sitebucket/$WERCKER_GIT_BRANCH/")
    run = run_wercker(tmp_path, pipeline(step), files=files, env=S3_ENV, path=[tools.dir])
    passed(run)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="sitebucket")["Contents"]}
    assert keys == {"main/index.html", "main/css/a.css"}
    head = s3.head_object(Bucket="sitebucket", Key="main/index.html")
    assert head["ContentType"] == "text/html"
    grants = s3.get_object_acl(Bucket="sitebucket", Key="main/index.html")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("AllUsers") for g in grants)  # --acl-public
    assert S3_ENV["AWS_SECRET_ACCESS_KEY"] not in run.output
    # Second sync: only the changed file goes up; delete-removed false keeps remote files.
    (tmp_path / "project" / "site" / "css" / "a.css").unlink()
    files = {"site/index.html": "<h1>changed</h1>"}
    step = s3sync_step(endpoint, "s3://sitebucket/main", **{"delete-removed": "false"})
    run = run_wercker(tmp_path, pipeline(step), files=files, env=S3_ENV, path=[tools.dir])
    passed(run)
    assert "upload: index.html" in run.output and "a.css" not in run.output
    body = s3.get_object(Bucket="sitebucket", Key="main/index.html")["Body"].read()
    assert body == b"<h1>changed</h1>"
    assert "main/css/a.css" in {
        o["Key"] for o in s3.list_objects_v2(Bucket="sitebucket")["Contents"]
    }


def test_s3sync_failures(tmp_path: Path, moto_ecr: object) -> None:
    endpoint = moto_ecr.endpoint_url  # type: ignore[attr-defined]
    tools = ToolBin(tmp_path / "bin")
    boto3_python(tools)
    files = {"site/a.txt": "a"}
    run = run_wercker(
        tmp_path,
        pipeline(s3sync_step(endpoint, "s3://no-such-bucket/")),
        files=files,
        env=S3_ENV,
        path=[tools.dir],
    )
    failed_with(run, "S3 refused: NoSuchBucket")
    run = run_wercker(
        tmp_path, pipeline(s3sync_step(endpoint, "s3://b/")), files=files, path=[tools.dir]
    )
    failed_with(run, "key-id option is empty")
    api = f"http://127.0.0.1:{closed_port()}"
    run = run_wercker(
        tmp_path, pipeline(s3sync_step(api, "s3://b/")), files=files, env=S3_ENV, path=[tools.dir]
    )
    failed_with(run, "cannot reach S3")


def test_s3sync_without_python_or_boto3_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    step = s3sync_step("http://x", "s3://b/")
    run = run_wercker(tmp_path, pipeline(step), env=S3_ENV, path=[tools.dir], host_path=False)
    failed_with(run, "python3 is not in this box")
    tools.fake("python3", "exit 1")  # a python3 without boto3
    run = run_wercker(tmp_path, pipeline(step), env=S3_ENV, path=[tools.dir], host_path=False)
    failed_with(run, "python3 in this box has no boto3")


# -- kubectl ---------------------------------------------------------------------------------


def test_kubectl_builds_and_evaluates_the_command(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("kubectl")
    step = (
        "    - kubectl:\n        server: $KUBE_SERVER\n        token: $KUBE_TOKEN\n"
        "        insecure-skip-tls-verify: true\n"
        "        command: apply -f deployment.yml; echo applied-and-echoed\n"
        "        raw-args: --prune\n        debug: true\n"
    )
    env = {"KUBE_SERVER": "https://k8s:6443", "KUBE_TOKEN": "tok'$en\"x"}
    run = run_wercker(tmp_path, pipeline(step), env=env, path=[tools.dir])
    passed(run)
    assert tools.calls("kubectl") == [
        ["version", "--client"],
        [
            "--server=https://k8s:6443",
            "--token=tok'$en\"x",
            "--insecure-skip-tls-verify=true",
            "apply",
            "-f",
            "deployment.yml",
        ],
    ]
    assert "applied-and-echoed" in run.output
    assert "--token=<hidden>" in run.output


def test_kubectl_result_is_kubectls(tmp_path: Path) -> None:
    tools = ToolBin(tmp_path / "bin")
    tools.fake("kubectl", '[ "$1" = version ] || exit 4')
    run = run_wercker(
        tmp_path, pipeline("    - kubectl:\n        command: get pods\n"), path=[tools.dir]
    )
    assert run.code == 1 and "exit 4" in run.line_with(": failed"), run.output
    failed_with(
        run_wercker(tmp_path, pipeline("    - kubectl\n"), path=[tools.dir]),
        "command argument cannot be empty",
    )


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl")
def test_kubectl_for_real(tmp_path: Path) -> None:
    step = "    - kubectl:\n        command: version --client\n"
    passed(run_wercker(tmp_path, pipeline(step)))


def test_kubectl_without_kubectl_says_so(tmp_path: Path) -> None:
    tools = minimal(tmp_path)
    run = run_wercker(
        tmp_path,
        pipeline("    - kubectl:\n        command: get pods\n"),
        path=[tools.dir],
        host_path=False,
    )
    failed_with(run, "kubectl is not in this box")


# -- POSIX sh --------------------------------------------------------------------------------


@pytest.mark.skipif(
    Path("/bin/sh").resolve().name == "bash", reason="/bin/sh is bash: no other shell to try"
)
def test_steps_run_in_a_posix_sh_without_bash(tmp_path: Path) -> None:
    """A box without bash runs the steps in /bin/sh (dash here): the library is POSIX sh."""
    tools = ToolBin(tmp_path / "minbin", only_host_tools=("curl",), without=("bash",))
    tools.fake("kubectl")
    env = {"GITHUB_TOKEN": TOKEN, "VERSION": "3.0.0", "KUBE_TOKEN": "t"}
    with ReleasesFake(TOKEN) as github:
        steps = (
            '    - create-file:\n        filename: notes.txt\n        content: "a\\tb"\n'
            + release_steps(github.url, body='"line1\\nline2"')
            + "    - kubectl:\n        token: $KUBE_TOKEN\n        command: get pods\n"
            + script(
                'echo "bash=${BASH_VERSION:-none} release=$WERCKER_GITHUB_CREATE_RELEASE_ID"\n'
                "cat notes.txt"
            )
        )
        run = run_wercker(tmp_path, pipeline(steps), env=env, path=[tools.dir], host_path=False)
    passed(run)
    assert "release=4200" in run.output and "a\tb" in run.output
    assert "bash=none release=4200" in run.output
    sent = github.requests[0].json()
    assert (sent["tag_name"], sent["body"]) == ("v3.0.0", "line1\nline2")
    assert tools.calls("kubectl")[1] == ["--token=t", "get", "pods"]


def test_slack_notifier_serves_pretty_slack_notify(tmp_path: Path) -> None:
    """Configured as the source of ``pasonatquila/pretty-slack-notify``, the package reads
    that step's variables (``WERCKER_PRETTY_SLACK_NOTIFY_*``) and its default username."""
    library = Path(__file__).resolve().parents[2] / "steps" / "library"
    config = tmp_path / "bot.toml"
    config.write_text(
        'data_dir = "var"\n[runner]\nkind = "local-unsafe"\n[steps]\n'
        f'"pasonatquila/pretty-slack-notify" = {{ path = "{library / "slack-notifier"}" }}\n'
    )
    with SlackFake() as slack:
        notify = (
            "    - pasonatquila/pretty-slack-notify@0.3.6:\n        webhook_url: $SLACK_URL\n"
            "        channel: ops\n        passed_message: shipped\n"
        )
        run = run_wercker(
            tmp_path,
            pipeline(script("true"), after=notify),
            env={"SLACK_URL": slack.webhook},
            args=["--config", str(config)],
        )
    passed(run)
    (payload,) = slack.payloads()
    assert payload["username"] == "Wercker" and payload["channel"] == "#ops"
    assert payload["attachments"][0]["text"].endswith("has passed on branch main shipped")
