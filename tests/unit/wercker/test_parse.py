"""``bot.wercker.parse``: finding the file in a checkout, reading it (UTF-8, the size limit)
and ``load_text``, which reads and lints."""

from __future__ import annotations

from pathlib import Path

from bot.wercker.parse import MAX_FILE_BYTES, find_file, inside, load_dir, load_path, load_text


def test_find_file_prefers_wercker_yml(tmp_path: Path) -> None:
    assert find_file(tmp_path) is None
    (tmp_path / "Wercker.yml").write_text("build: {}\n")
    (tmp_path / "wercker.yaml").write_text("build: {}\n")
    assert find_file(tmp_path) is None  # neither Wercker.yml nor wercker.yaml (as WCLI)
    (tmp_path / ".wercker.yml").write_text("build: {}\n")
    assert find_file(tmp_path) == tmp_path / ".wercker.yml"
    (tmp_path / "wercker.yml").write_text("build: {}\n")
    assert find_file(tmp_path) == tmp_path / "wercker.yml"


def test_load_dir(tmp_path: Path) -> None:
    assert load_dir(tmp_path) == (None, [], None)
    (tmp_path / ".wercker.yml").write_text("build:\n  steps:\n    - script: {code: a}\n")
    wf, problems, path = load_dir(tmp_path)
    assert wf is not None and wf.path == ".wercker.yml" and path == tmp_path / ".wercker.yml"
    assert problems == []


def test_load_dir_reports_bad_bytes(tmp_path: Path) -> None:
    (tmp_path / "wercker.yml").write_bytes(b"build: \xff\n")
    wf, problems, _ = load_dir(tmp_path)
    assert wf is None and "not UTF-8" in problems[0].message


def test_a_file_over_the_limit_is_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "wercker.yml").write_bytes(b"build: {steps: [a]}\n" + b"#" * MAX_FILE_BYTES)
    wf, problems, path = load_dir(tmp_path)
    assert wf is None and path == tmp_path / "wercker.yml"
    assert [p.format() for p in problems] == [
        "wercker.yml:1:1: error: wercker.yml is 1,000,020 bytes; the limit is 1,000,000 bytes; "
        "move long scripts into files in the repository and run them from a step"
    ]
    (tmp_path / "wercker.yml").write_bytes(b"build: {steps: [a]}\n" + b"#" * 1_500_000)
    assert load_dir(tmp_path)[1][0].message == "wercker.yml is 1.5 MB; the limit is 1 MB"
    # At the limit exactly, the file is read.
    exact = b"build: {steps: [{script: {code: a}}]}\n"
    (tmp_path / "wercker.yml").write_bytes(exact + b"#" * (MAX_FILE_BYTES - len(exact)))
    wf, problems, _ = load_dir(tmp_path)
    assert wf is not None and problems == []


def test_load_text_has_the_same_limit() -> None:
    wf, problems = load_text("#" * (MAX_FILE_BYTES + 1), "wercker.yml")
    assert wf is None and problems[0].message.startswith("wercker.yml is 1,000,001 bytes")


def test_inside_resolves_links_and_refuses_what_leaves_the_directory(tmp_path: Path) -> None:
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere.yml"
    (checkout / "sub").mkdir(parents=True)
    elsewhere.write_text("build: {}\n")
    (checkout / "sub" / "real.yml").write_text("build: {}\n")
    (checkout / "in.yml").symlink_to("sub/real.yml")
    (checkout / "out.yml").symlink_to(elsewhere)
    assert inside(checkout, checkout / "in.yml") == (checkout / "sub" / "real.yml").resolve()
    assert inside(checkout, checkout) == checkout.resolve()
    assert inside(checkout, checkout / "out.yml") is None
    assert inside(checkout, checkout / ".." / "elsewhere.yml") is None


def test_load_dir_reads_a_link_inside_the_checkout_under_its_own_name(tmp_path: Path) -> None:
    (tmp_path / "ci.yml").write_text("build:\n  steps: [{script: {code: a}}]\n")
    (tmp_path / "wercker.yml").symlink_to("ci.yml")
    wf, problems, path = load_dir(tmp_path)
    assert wf is not None and wf.path == "wercker.yml" and problems == []
    assert path == tmp_path / "wercker.yml"


def test_an_unreadable_path_is_one_error_naming_the_file(tmp_path: Path) -> None:
    wf, problems = load_path(tmp_path / "missing.yml", "wercker.yml")
    assert wf is None
    (problem,) = problems
    assert problem.message.startswith("wercker.yml cannot be read: ")
    assert (problem.loc.line, problem.loc.col) == (1, 1)
