"""The benchmarks run as scripts, with ``bench/`` first on ``sys.path`` (``from tables
import table``); the tests load them by path, so they put it there too."""

import sys
from pathlib import Path

BENCH_DIR = str(Path(__file__).resolve().parents[3] / "bench")
if BENCH_DIR not in sys.path:
    sys.path.insert(0, BENCH_DIR)
