"""``bot.wercker.schema``: the tables agree with the step table, and which options must have
their ``$VAR`` defined."""

from __future__ import annotations

import pytest

from bot.wercker import schema


def test_runnable_steps_match_the_step_table() -> None:
    from steps import STEP_TYPES

    assert set(STEP_TYPES) == schema.RUNNABLE_STEPS


@pytest.mark.parametrize(
    ("option", "strict"),
    [
        ("repository", True),
        ("registry", True),
        ("username", True),
        ("password", True),
        ("aws-secret-key", True),
        ("azure-client-id", True),
        ("tag", False),
        ("cmd", False),
        ("env", False),
        ("image-name", False),
    ],
)
def test_only_credentials_and_where_to_push_must_be_defined(option: str, strict: bool) -> None:
    assert schema.is_strict(option) is strict


def test_every_runnable_internal_step_has_an_options_table() -> None:
    # check_step reads schema.STEP_OPTIONS for a runnable internal step's known options.
    internal = {step for step in schema.RUNNABLE_STEPS if step.startswith("internal/")}
    assert internal <= set(schema.STEP_OPTIONS)
    assert schema.BOX_USED_KEYS <= schema.BOX_KEYS <= schema.SERVICE_KEYS
