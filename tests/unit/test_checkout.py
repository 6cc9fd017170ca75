"""Checkout helpers that need no git remote."""

from __future__ import annotations

from bot.checkout import auth_env, split_credentials


def test_clone_url_credentials_travel_as_a_header() -> None:
    url, user, password = split_credentials("https://bot:p%40ss-w0rd@git.example.com/a/b.git")
    assert url == "https://git.example.com/a/b.git" and (user, password) == ("bot", "p@ss-w0rd")
    env = auth_env("https://bot:p%40ss-w0rd@git.example.com/a/b.git", "", None)
    assert env["GIT_CONFIG_KEY_0"] == "http.https://git.example.com/.extraheader"
    assert "p@ss-w0rd" not in " ".join(env.values())  # base64 in a header, never the URL
