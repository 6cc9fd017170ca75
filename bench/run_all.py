"""Runs every benchmark in ``bench/`` in turn; each prints its own table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["spine.py", "push.py", "check.py", "logs.py", "intake.py", "scale_out.py"]


def main() -> int:
    failed = 0
    for name in BENCHES:
        path = HERE / name
        if not path.exists():
            print(f"(skipping {name}: not present)")
            continue
        print(f"\n=== {name} ===", flush=True)
        failed |= subprocess.call([sys.executable, str(path)])
    return failed


if __name__ == "__main__":
    sys.exit(main())
