"""``bot.wercker.yamlnodes``: YAML errors as one located problem with a hint, bad characters,
the alias-expansion guard, and the text of a scalar as written."""

from __future__ import annotations

import pytest
from yaml.nodes import MappingNode, ScalarNode

from bot.wercker.parse import load_text
from bot.wercker.yamlnodes import alias_blowup, compose, file_error, kind, raw, scalar_text


def test_yaml_error_hints() -> None:
    _, tab = load_text("build:\n  steps:\n    - a\n\t- b\n", "wercker.yml")
    _, dash = load_text("build:\n  steps:\n    - a\n    -script:\n      code: x\n", "wercker.yml")
    assert tab[0].hint and "tabs" in tab[0].hint
    assert dash[0].hint and "space after '-'" in dash[0].hint


def test_bad_characters_are_located() -> None:
    wf, problems = load_text("build:\n  steps:\n    - script: {code: \"a\x01\"}\n", "wercker.yml")
    assert wf is None
    assert (problems[0].loc.line, problems[0].loc.col) == (3, 24)


@pytest.mark.parametrize(
    "text",
    [
        "&a [*a]",
        "a: &a [*a]\nbuild: {steps: *a}\n",
        "x: &m {<<: *m}\nbuild: {steps: [a]}\n",
    ],
)
def test_an_alias_inside_its_own_anchor_is_a_located_error(text: str) -> None:
    wf, problems = load_text(text, "wercker.yml")
    assert wf is None
    assert len(problems) == 1 and "used inside the node its anchor" in problems[0].message


def test_aliases_that_expand_past_the_budget_are_refused() -> None:
    laughs = ["l0: &l0 ['" + "x" * 100 + "']"]
    for i in range(1, 8):  # nested lists of ten aliases each: 10**7 copies of the text
        laughs.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i - 1}"] * 10) + "]")
    wf, problems = load_text("\n".join(laughs) + "\nbuild: {steps: [a]}\n", "wercker.yml")
    assert wf is None and "too big once its aliases" in problems[0].message
    # Ordinary reuse stays well inside it.
    wf, problems = load_text(
        "base: &b {steps: [{script: {code: a}}]}\nbuild: *b\ndeploy: *b\n", "wercker.yml"
    )
    assert wf is not None and not [p for p in problems if p.severity == "error"]


# -- "mapping values are not allowed here": the hint says what is on that line ---------------


@pytest.mark.parametrize(
    ("text", "line", "hint"),
    [
        ("build:\n  steps:\n    - bundle-install\n      cwd: frontend/\n", 4,
         "'- bundle-install' above is a plain list item, so 'cwd:' cannot be indented under "
         "it; to give a step options write '- bundle-install:' and indent its options under it"),
        ("build:\n  steps:\n    - script:\n        name: echo a: b\n        code: x\n", 4,
         "the value after 'name:' contains ': ', which YAML reads as another key; quote the "
         "whole value (or use a block scalar '|'), or put a nested key on its own line, "
         "indented"),
        ("build: steps: x\n", 1, "the value after 'build:' contains ': '"),
        ("build:\n  steps:\n    - script:\n        name: x\n          code: y\n", 5,
         "this line is indented deeper than 'name:' above, which already has a value on its "
         "line; line this key up with 'name:', or write 'name:' alone to nest it"),
        ("box: golang\n  build:\n    steps: []\n", 2,
         "this line is indented deeper than 'box:' above"),
    ],
)
def test_mapping_values_hint_matches_its_line(text: str, line: int, hint: str) -> None:
    wf, problems = load_text(text, "wercker.yml")
    assert wf is None
    (problem,) = problems
    assert "mapping values are not allowed" in problem.message
    assert problem.loc.line == line
    assert problem.hint and problem.hint.startswith(hint), problem.hint


def test_mapping_values_hint_never_echoes_a_value() -> None:
    _, (problem,) = load_text("build:\n  password: hunter2: x\n", "wercker.yml")
    assert "hunter2" not in problem.format() and "'password:'" in (problem.hint or "")


# -- the helpers called directly --------------------------------------------------------------


def _scalar(text: str) -> ScalarNode:
    root, _ = compose(f"key: {text}\n")
    assert isinstance(root, MappingNode)
    value = root.value[0][1]
    assert isinstance(value, ScalarNode)
    return value


@pytest.mark.parametrize(
    ("written", "option", "text"),
    [
        ("True", "tag", "true"),  # never Python's "True"
        ("FALSE", "tag", "false"),
        ("yes", "tag", "yes"),  # kept as written outside boolean options
        ("yes", "disable-sync", "true"),
        ("off", "no-cache", "false"),
        ("~", "tag", ""),
        ("1.10", "tag", "1.10"),
        ("2018-01-01", "tag", "2018-01-01"),
    ],
)
def test_scalar_text_is_the_written_text(written: str, option: str, text: str) -> None:
    assert scalar_text(_scalar(written), option) == text


def test_compose_records_which_nodes_carry_an_anchor() -> None:
    root, anchored = compose("a: &x {b: 1}\nc: *x\nd: 2\n")
    assert isinstance(root, MappingNode)
    (_, a), (_, c), (_, d) = root.value
    assert id(a) in anchored and c is a  # the alias is the anchored node itself
    assert id(d) not in anchored and len(anchored) == 1
    assert compose("") == (None, set())


def test_kind_names_the_shape_never_the_value() -> None:
    root, _ = compose("m: {a: 1}\nl: [1]\nn:\ns: hunter2\n")
    assert isinstance(root, MappingNode)
    kinds = [kind(value) for _, value in root.value]
    assert kinds == ["a mapping", "a list", "empty", "a plain value"]
    assert raw(root.value[3][1]) == "hunter2" and raw(root) == ""


def test_alias_blowup_is_none_for_ordinary_reuse() -> None:
    root, _ = compose("a: &x [1, 2]\nb: *x\nc: *x\n")
    assert root is not None
    assert alias_blowup(root, "wercker.yml") is None


def test_file_error_is_located_at_the_start_and_names_the_file() -> None:
    problem = file_error(".wercker.yml", "is not UTF-8 text")
    assert problem.format() == ".wercker.yml:1:1: error: .wercker.yml is not UTF-8 text"
