"""``bot.wercker.model``: how a problem is shown (editor form and commit-status form), option
look-up with a default, and a pipeline's box replacing the file's."""

from __future__ import annotations

import pytest

from bot.wercker.model import BoxSpec, Loc, PipelineSpec, Problem, StepSpec, WerckerFile

AT = Loc("wercker.yml", 12, 5)


def test_a_location_reads_as_editors_jump_to_it() -> None:
    assert str(AT) == "wercker.yml:12:5"


def test_format_adds_the_hint_only_when_there_is_one() -> None:
    bare = Problem(AT, "warning", "option 'x' is ignored")
    assert bare.format() == "wercker.yml:12:5: warning: option 'x' is ignored"
    hinted = Problem(AT, "error", "bad", "fix it")
    assert hinted.format() == "wercker.yml:12:5: error: bad; fix it"


def test_short_is_the_commit_status_form_without_column_or_hint() -> None:
    problem = Problem(AT, "error", "bad", "fix it", "build")
    assert problem.short() == "wercker.yml line 12: bad"


def test_option_falls_back_to_the_default() -> None:
    step = StepSpec("script", AT, "s", options={"code": "make"})
    assert step.option("code") == "make"
    assert step.option("cwd") == ""
    assert step.option("cwd", "sub") == "sub"


def test_a_pipeline_box_replaces_the_file_box() -> None:
    top, own = BoxSpec("alpine", AT), BoxSpec("golang", AT, options={"tag": "1.22"})
    wf = WerckerFile("wercker.yml", box=top)
    assert wf.box_for(PipelineSpec("build", AT)) is top
    assert wf.box_for(PipelineSpec("deploy", AT, box=own)) is own
    assert WerckerFile("wercker.yml").box_for(PipelineSpec("build", AT)) is None


def test_records_get_fresh_defaults_and_compare_within_their_type_only() -> None:
    one, two = StepSpec("script", AT, "s"), StepSpec("script", AT, "s")
    one.options["code"] = "make"
    assert two.options == {}  # never a shared default
    assert one != two and StepSpec("script", AT, "s") == two
    box = BoxSpec("script", AT)
    assert box != StepSpec("script", AT, "script")  # another record type is never equal
    assert repr(two) == (
        "StepSpec(id='script', loc=Loc(file='wercker.yml', line=12, col=5), name='s', "
        "options={}, option_locs={}, cwd=None)"
    )
    with pytest.raises(TypeError):
        hash(two)  # mutable: never a dict key


def test_with_options_replaces_only_the_options() -> None:
    box = BoxSpec("golang:1.22", AT, {"tag": "1"}, {"GOFLAGS": "-mod=mod"})
    pulled = box.with_options({"tag": "2"})
    assert pulled.options == {"tag": "2"} and box.options == {"tag": "1"}
    assert (pulled.id, pulled.loc, pulled.env) == (box.id, box.loc, box.env)
