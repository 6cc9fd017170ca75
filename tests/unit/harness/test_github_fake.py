"""The GitHub fake itself (``tests/harness/github_fake.py``): it must refuse what GitHub
refuses, or end-to-end tests lie."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests

import tests.harness.github_fake as fake_module
from tests.harness.github_fake import GitHubFake, status_response_schema
from tests.harness.paths import need_shared

SHA = "ab" * 20


def post(fake: GitHubFake, body: Any, sha: str = SHA, **kw: Any) -> requests.Response:
    return requests.post(f"{fake.url}/repos/acme/app/statuses/{sha}", json=body, timeout=5, **kw)


def test_schema_is_githubs_openapi_fragment(github_fake: GitHubFake) -> None:
    need_shared(fake_module.CREATE_STATUS_SPEC)
    assert github_fake.schema_source.endswith("openapi/repos/create-commit-status.json")
    assert github_fake.schema["properties"]["description"]["type"] == ["string", "null"]


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"state": "ok"}, "'ok' is not one of"),
        ({"state": "success", "description": "x" * 141}, "description is 141 characters"),
        ({"state": "success", "description": "🚀" * 71}, "description is 142 characters"),
        ({"context": "ci"}, "'state' is a required property"),
        ({"state": "success", "context": 5}, "5 is not of type 'string'"),
        ({"state": "success", "target_url": ["x"]}, "is not of type"),
        (["success"], "is not of type 'object'"),
    ],
)
def test_schema_violations_get_422_and_are_recorded(
    github_fake: GitHubFake, body: Any, needle: str
) -> None:
    resp = post(github_fake, body)
    assert resp.status_code == 422
    assert resp.json()["message"] == "Validation Failed"
    assert len(github_fake.violations) == 1
    assert needle in str(github_fake.violations[0])
    assert github_fake.statuses("acme/app", SHA) == []


def test_description_too_long_answer_matches_github(github_fake: GitHubFake) -> None:
    resp = post(github_fake, {"state": "success", "description": "x" * 141})
    assert {
        "resource": "Status",
        "code": "custom",
        "field": "description",
        "message": "description is too long (maximum is 140 characters)",
    } in resp.json()["errors"]


def test_nulls_are_allowed_where_openapi_says_nullable(github_fake: GitHubFake) -> None:
    resp = post(github_fake, {"state": "pending", "description": None, "target_url": None})
    assert resp.status_code == 201
    assert github_fake.violations == []


@pytest.mark.parametrize("sha", ["HEAD", "main", "abc123"])
def test_non_sha_path_is_refused(github_fake: GitHubFake, sha: str) -> None:
    resp = post(github_fake, {"state": "success"}, sha=sha)
    assert resp.status_code == 422
    assert resp.json()["message"] == "sha must be a 40 character SHA1"
    assert github_fake.violations


def test_non_json_body_is_400(github_fake: GitHubFake) -> None:
    resp = requests.post(
        f"{github_fake.url}/repos/acme/app/statuses/{SHA}",
        data=b"state=success",
        headers={"Content-Type": "application/json"},
        timeout=5,
    )
    assert resp.status_code == 400
    assert github_fake.violations


def test_created_status_matches_openapi_response_schema(github_fake: GitHubFake) -> None:
    schema = status_response_schema()
    if schema is None:
        need_shared(fake_module.CREATE_STATUS_SPEC)
    resp = post(github_fake, {"state": "success", "context": "ci", "target_url": "http://x/1"})
    assert resp.status_code == 201
    assert resp.headers["Location"].endswith(f"/repos/acme/app/statuses/{SHA}")
    jsonschema.validate(resp.json(), schema)
    assert github_fake.violations == []


def test_list_is_newest_first_and_combined_follows_githubs_rules(
    github_fake: GitHubFake,
) -> None:
    base = f"{github_fake.url}/repos/acme/app/commits/{SHA}"
    assert requests.get(f"{base}/status", timeout=5).json()["state"] == "pending"
    post(github_fake, {"state": "pending", "context": "a"})
    post(github_fake, {"state": "success", "context": "a"})
    post(github_fake, {"state": "success", "context": "b"})
    listed = requests.get(f"{base}/statuses", timeout=5).json()
    assert [(s["context"], s["state"]) for s in listed] == [
        ("b", "success"),
        ("a", "success"),
        ("a", "pending"),
    ]
    combined = requests.get(f"{base}/status", timeout=5).json()
    assert (combined["state"], combined["total_count"], combined["sha"]) == ("success", 2, SHA)
    post(github_fake, {"state": "error", "context": "b"})
    assert requests.get(f"{base}/status", timeout=5).json()["state"] == "failure"


def test_repo_names_match_case_insensitively(github_fake: GitHubFake) -> None:
    requests.post(
        f"{github_fake.url}/repos/Acme/App/statuses/{SHA}", json={"state": "success"}, timeout=5
    )
    assert github_fake.final_states("acme/app", SHA) == {"default": "success"}


def test_unknown_route_is_404(github_fake: GitHubFake) -> None:
    assert requests.get(f"{github_fake.url}/user", timeout=5).status_code == 404


def test_fail_next_counts_down(github_fake: GitHubFake) -> None:
    github_fake.fail_next(2, status=502, headers={"Retry-After": "3"})
    first = post(github_fake, {"state": "success"})
    assert (first.status_code, first.headers["Retry-After"]) == (502, "3")
    assert post(github_fake, {"state": "success"}).status_code == 502
    assert post(github_fake, {"state": "success"}).status_code == 201
    assert [r.status for r in github_fake.requests] == [502, 502, 201]


def test_down_drops_connections_until_up(github_fake: GitHubFake) -> None:
    github_fake.down()
    with pytest.raises(requests.ConnectionError):
        post(github_fake, {"state": "success"})
    github_fake.up()
    assert post(github_fake, {"state": "success"}).status_code == 201


def test_wait_for_sees_a_background_post_and_times_out_clearly(
    github_fake: GitHubFake,
) -> None:
    timer = threading.Timer(0.1, post, args=(github_fake, {"state": "success", "context": "c"}))
    timer.start()
    states = github_fake.wait_for(lambda: github_fake.final_states("acme/app", SHA), timeout=5)
    assert states == {"c": "success"}
    with pytest.raises(AssertionError, match=r"condition not met within 0\.1s"):
        github_fake.wait_for(lambda: github_fake.statuses("acme/app", "f" * 40), timeout=0.1)


def test_reset_forgets_everything(github_fake: GitHubFake) -> None:
    post(github_fake, {"state": "ok"})
    github_fake.fail_next(3)
    github_fake.reset()
    assert (github_fake.requests, github_fake.violations) == ([], [])
    assert post(github_fake, {"state": "success"}).status_code == 201


def test_fallback_schema_without_shared(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(fake_module, "CREATE_STATUS_SPEC", tmp_path / "absent.json")
    fake = GitHubFake().start()
    try:
        assert fake.schema_source == "built-in fallback"
        assert post(fake, {"state": "ok"}).status_code == 422
        assert post(fake, {"state": "success", "description": None}).status_code == 201
    finally:
        fake.stop()
