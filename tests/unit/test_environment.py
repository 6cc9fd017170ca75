from bot.environment import pipeline_env, step_env
from bot.runners.base import GuestPaths
from steps.base import BuildFacts

PATHS = GuestPaths(
    "/pipeline", "/pipeline/source", "/pipeline/source", "/pipeline/output", "/pipeline/cache"
)
FACTS = BuildFacts(
    repo="acme/app",
    branch="feature/x",
    git_tag="",
    commit="c" * 40,
    source_url="https://ghe.example.com/acme/app",
    run_id="7-1",
    run_url="http://bot/builds/7",
    created="2026-01-01T00:00:00Z",
)


def test_build_environment() -> None:
    env = pipeline_env(FACTS, "build", PATHS, source_dir="app", deploy=False, deploy_target=None)
    assert env["WERCKER_SOURCE_DIR"] == "/pipeline/source/app"
    assert env["WERCKER_ROOT"] == "/pipeline/source"
    assert env["WERCKER_OUTPUT_DIR"] == "/pipeline/output"
    assert env["WERCKER_CACHE_DIR"] == "/pipeline/cache"
    assert env["WERCKER_PIPELINE_DIR"] == "/pipeline"
    assert (env["WERCKER_GIT_OWNER"], env["WERCKER_GIT_REPOSITORY"]) == ("acme", "app")
    assert env["WERCKER_GIT_DOMAIN"] == "ghe.example.com"
    assert env["WERCKER_GIT_BRANCH"] == "feature/x" and env["WERCKER_GIT_COMMIT"] == "c" * 40
    assert env["WERCKER_RUN_ID"] == "7-1" and env["WERCKER_RUN_URL"] == "http://bot/builds/7"
    assert env["CI"] == env["BUILD"] == "true" and "DEPLOY" not in env
    assert env["WERCKER_BUILD_ID"] == "7-1"


def test_deploy_environment_and_target() -> None:
    env = pipeline_env(
        FACTS, "deploy", PATHS, source_dir=None, deploy=True, deploy_target="production"
    )
    assert env["DEPLOY"] == "true" and "CI" not in env and "BUILD" not in env
    assert env["WERCKER_DEPLOYTARGET_NAME"] == "production"
    assert env["WERCKER_DEPLOY_URL"] == "http://bot/builds/7"


def test_step_environment() -> None:
    env = step_env(PATHS, "owner/name@1.0", "my step")
    assert env["WERCKER_STEP_NAME"] == "name" and env["WERCKER_STEP_OWNER"] == "owner"
    assert env["WERCKER_STEP_ROOT"].startswith("/pipeline/name-")
    assert env["WERCKER_STEP_DISPLAY_NAME"] == "my step"
