"""Case-insensitive header lookup shared by the webhook and API sides."""

from __future__ import annotations

from collections.abc import Mapping


def header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of ``name`` in ``headers`` regardless of case, or None.

    GitHub's own docs and OpenAPI spell the same headers several ways (``X-GitHub-Hook-ID``,
    ``X-Github-Hook-Id``), and a plain dict from a test or a proxy keeps whatever it was given.
    """
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    for key, candidate in headers.items():
        if key.lower() == wanted:
            return candidate
    return None
