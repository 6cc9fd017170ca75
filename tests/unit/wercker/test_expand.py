"""$VAR expansion of step options (behaviour §6)."""

from __future__ import annotations

import pytest

from bot.errors import StepConfigError
from bot.logs import MemoryLog
from bot.wercker.expand import disable_sync, expand, expand_options
from bot.wercker.model import Loc, StepSpec

ENV = {"A": "x", "B_1": "y", "EMPTY": "", "SPACED": "two words"}


@pytest.mark.parametrize(
    ("text", "value", "undefined"),
    [
        ("$A", "x", []),
        ("${A}", "x", []),
        ("$A-$B_1", "x-y", []),
        ("${A}suffix", "xsuffix", []),
        ("$Asuffix", "", ["Asuffix"]),
        ("$$A", "$A", []),
        ("cost $$5", "cost $5", []),
        ("end $", "end $", []),
        ("a $ b", "a $ b", []),
        ("$-x", "$-x", []),
        ("${A:-d}", "", ["A:-d"]),
        ("$UNDEF/$UNDEF", "/", ["UNDEF"]),
        ("$EMPTY", "", []),
        ("$1abc", "abc", ["1"]),
        ("${unclosed", "${unclosed", []),
        ("${}", "${}", []),
        ("no vars", "no vars", []),
    ],
)
def test_expand(text: str, value: str, undefined: list[str]) -> None:
    assert expand(text, ENV, option="tag", strict=False) == (value, undefined)


def test_strict_names_variable_and_option_not_value() -> None:
    with pytest.raises(StepConfigError) as err:
        expand("$PASSWORD", {"OTHER": "s3cret"}, option="password", strict=True)
    assert str(err.value) == (
        "$PASSWORD is not defined (used in option 'password'); set it in the repo's "
        "env/secrets or export it in an earlier step"
    )


def step(**options: str) -> StepSpec:
    return StepSpec("internal/docker-push", Loc("wercker.yml", 3, 7), "push", dict(options))


def test_expand_options_skips_cmd_and_entrypoint_and_warns() -> None:
    log = MemoryLog()
    out = expand_options(
        step(repository="acme/$A", tag="$A,$NOPE", cmd="echo $A", entrypoint="$A"), ENV, log
    )
    assert out == {"repository": "acme/x", "tag": "x,", "cmd": "echo $A", "entrypoint": "$A"}
    assert "$NOPE not defined (used in option 'tag')" in log.text


@pytest.mark.parametrize("option", ["repository", "registry", "username", "password",
                                    "aws-secret-key", "azure-client-id"])
def test_strict_options_raise(option: str) -> None:
    with pytest.raises(StepConfigError, match=f"option '{option}'"):
        expand_options(step(**{option: "$MISSING"}), ENV, MemoryLog())


def test_word_options_expand_each_word() -> None:
    out = expand_options(step(env="FOO=$SPACED bar='Three word value'"), ENV, MemoryLog())
    assert out["env"] == "'FOO=two words' 'bar=Three word value'"


def test_disable_sync_is_exactly_true() -> None:
    assert disable_sync(step(**{"disable-sync": "true"}))
    assert not disable_sync(step(**{"disable-sync": "True"}))
    assert not disable_sync(step())
