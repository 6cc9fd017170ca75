"""``wercker-bot check FILE`` benchmark, printed as a table (not a test).

Editors and pre-commit hooks run ``check`` on every save, one process per file, so what counts
is the wall time of a whole process: interpreter start, imports, parse and lint. Target: under
150 ms per file (median over the corpus).

The peer, measured in the same run on the same files (each file: ours, then the peer, so load
on the machine hits both alike), is a bare ``python -c "import yaml, sys;
yaml.safe_load(open(sys.argv[1]))"``: process start plus the YAML parse, the least any Python
checker can cost. Bare interpreter start (``python -c pass``) is shown for scale.

Every process runs as an editor or a hook would run it: with Python's bytecode cache (the
bench drops ``PYTHONDONTWRITEBYTECODE`` for its children; an untimed first run fills the
cache), else each run would compile the bot's sources again (about 30 ms here).

The corpus is ``../shared/corpus/wercker-yml/files`` (150 real files) when present, else
``tests/scenarios/*.yml``.

Run: ``.venv/bin/python bench/check.py [--corpus DIR] [--repeat 1] [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tables import table  # bench/tables.py: scripts run with bench/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
SHARED_CORPUS = ROOT.parent / "shared" / "corpus" / "wercker-yml" / "files"
SCENARIOS = ROOT / "tests" / "scenarios"
TARGET_MS = 150.0
PEER_CODE = "import yaml, sys; yaml.safe_load(open(sys.argv[1]))"
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def spread(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "p90": round(p90(values), 1)}


def corpus_files(corpus: Path | None) -> list[Path]:
    if corpus is not None:
        return sorted(p for p in corpus.iterdir() if p.is_file())
    if SHARED_CORPUS.is_dir():
        return sorted(p for p in SHARED_CORPUS.iterdir() if p.is_file())
    return sorted(SCENARIOS.glob("*.yml"))


def check_command() -> list[str]:
    """The installed ``wercker-bot`` script next to this interpreter (what a hook runs), else
    ``python -m bot.cli``."""
    script = Path(sys.executable).parent / "wercker-bot"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]


def wall_ms(argv: list[str], ok_codes: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, env=CHILD_ENV
    )
    took = (time.perf_counter() - started) * 1000
    if done.returncode not in ok_codes:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:]
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {tail}")
    return took


def summary_rows(
    ours: list[float], peer: list[float], start: list[float]
) -> list[tuple[str, str, str, str]]:
    """(measure, median ms, p90 ms, ratio / verdict) rows; ratios are medians against the
    peer's median, the verdict is ours' median against ``TARGET_MS``."""
    ours_med, peer_med = statistics.median(ours), statistics.median(peer)
    return [
        (
            f"wercker-bot check FILE (target < {TARGET_MS:.0f} ms)",
            f"{ours_med:.0f}",
            f"{p90(ours):.0f}",
            f"{ours_med / peer_med:.2f}x peer {verdict(ours_med < TARGET_MS)}",
        ),
        ("peer: python -c 'yaml.safe_load(FILE)'", f"{peer_med:.0f}", f"{p90(peer):.0f}", "1.00x"),
        (
            "python -c pass (interpreter start)",
            f"{statistics.median(start):.0f}",
            f"{p90(start):.0f}",
            f"{statistics.median(start) / peer_med:.2f}x peer",
        ),
        (
            "  check's cost over the peer (imports, lint)",
            f"{ours_med - peer_med:.0f}",
            "",
            "",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, help="directory of wercker.yml files")
    parser.add_argument("--repeat", type=int, default=1, help="runs per file (default 1)")
    parser.add_argument("--limit", type=int, help="only the first N files")
    args = parser.parse_args()

    files = corpus_files(args.corpus)[: args.limit]
    if not files:
        raise SystemExit("no wercker.yml files to check")
    check = check_command()
    # Untimed runs first: they fill the bytecode cache and warm the page cache.
    wall_ms([*check, "check", str(files[0]), "--format", "json"], ok_codes=(0, 1))
    wall_ms([sys.executable, "-c", PEER_CODE, str(files[0])], ok_codes=(0, 1))
    ours: list[float] = []
    peer: list[float] = []
    start: list[float] = []
    for _ in range(max(1, args.repeat)):
        for path in files:
            # check exits 1 when the file has errors; the peer fails on broken YAML.
            ours.append(wall_ms([*check, "check", str(path)], ok_codes=(0, 1)))
            peer.append(wall_ms([sys.executable, "-c", PEER_CODE, str(path)], ok_codes=(0, 1)))
        for _ in range(min(len(files), 20)):
            start.append(wall_ms([sys.executable, "-c", "pass"]))

    where = files[0].parent
    shown = where.relative_to(ROOT.parent) if where.is_relative_to(ROOT.parent) else where
    print(
        table(
            f"wercker-bot check, one process per file: {len(files)} files from {shown}, "
            f"{max(1, args.repeat)} run(s) each (wall ms per file)",
            ("measure", "median", "p90", "ratio / verdict"),
            summary_rows(ours, peer, start),
        )
    )
    print(
        json.dumps(
            {
                "files": len(files),
                "repeat": max(1, args.repeat),
                "check_ms": spread(ours),
                "peer_ms": spread(peer),
                "target_ms": TARGET_MS,
            }
        )
    )


if __name__ == "__main__":
    main()
