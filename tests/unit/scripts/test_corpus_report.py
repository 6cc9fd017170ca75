"""scripts/corpus_report.py: which step ids resolve, the per-file views, and the report's
columns (issue 10: files whose every step resolves, and the unresolved ids ranked)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

from tests.harness.paths import CORPUS, need_shared

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "corpus_report.py"


@pytest.fixture(scope="module")
def corpus_report() -> ModuleType:
    spec = importlib.util.spec_from_file_location("corpus_report", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def library(tmp_path: Path) -> Path:
    lib = tmp_path / "library"
    (lib / "npm-install").mkdir(parents=True)
    (lib / "npm-install" / "run.sh").write_text("true\n")
    (lib / "half-written").mkdir()  # no run.sh yet: not a package
    return lib


@pytest.mark.parametrize(
    ("step_id", "expected"),
    [
        ("script", True),
        ("internal/docker-push", True),
        ("internal/watch", True),
        ("internal/shell", True),
        ("npm-install", True),
        ("wercker/npm-install", True),
        ("Wercker/NPM-Install@1.2.0", True),
        ("someone/npm-install", False),
        ("half-written", False),
        ("kubectl", False),
        ("internal/publish-step", False),
        ("wercker/..", False),
    ],
)
def test_resolves(corpus_report: ModuleType, library: Path, step_id: str,
                  expected: bool) -> None:
    assert corpus_report.resolves(step_id, library) is expected


def write(directory: Path, name: str, text: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text(text)


def test_views_and_report(corpus_report: ModuleType, library: Path, tmp_path: Path) -> None:
    files = tmp_path / "files"
    write(files, "a.yml", "build:\n  steps: [npm-install, internal/watch]\n")
    write(files, "b.yml", "build:\n  steps: [kubectl]\ndev:\n  steps: [gulp]\n")
    write(files, "c.yml", "build:\n  steps: [kubectl]\n  after-steps: [slack]\n")
    write(files, "d.yml", "test:\n  steps: [npm-install]\n")
    write(files, "e.yml", "build: [unclosed\n")
    whole, default = corpus_report.classify(files / "b.yml", library)
    assert whole.unresolved == {"kubectl", "gulp"} and default.unresolved == {"kubectl"}
    whole, default = corpus_report.classify(files / "a.yml", library)
    assert default.resolves and default.plans and default.status == "warnings"
    _, default = corpus_report.classify(files / "d.yml", library)
    assert default.unresolved is None and not default.resolves  # no build or deploy
    text = corpus_report.report(files, library)
    default_part = text.split("default build")[1]
    assert "; every step resolves 1; plans (no error, every step resolves) 1" in default_part
    assert "  unresolved step ids (2), by files using them:\n" in default_part
    assert "     2 files  kubectl\n     1 files  slack" in default_part


@pytest.mark.corpus
def test_the_corpus_report_runs(corpus_report: ModuleType) -> None:
    text = corpus_report.report(need_shared(CORPUS) / "files")
    assert text.startswith("150 files in ")
    assert text.count("; every step resolves ") == 2
