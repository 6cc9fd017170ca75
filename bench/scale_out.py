"""Scale-out scenario benchmark (issue 11): the settle time after the last push, as a table
(not a test; ``tests/integration/test_scale_out.py`` asserts the same run's invariants).

The scenario of ``tests.harness.scale_out_checks.run_scenario``: a private PostgreSQL
(``tests.harness.postgres``), the CNCF registry (``tests.harness.registry``, plain HTTP on
loopback) and the recording GitHub fake; one ``web`` process under the Procfile's gunicorn
command and 3 ``wercker-bot worker`` processes with their own ``data_dir``s; 3 repositories
x 10 branches; ``--pushes`` signed pushes from 5 client threads; mid-run one worker host is
``kill -9``ed during a build and another SIGSTOPped until the reaper ended its attempts.

Settle time: from the last push's acknowledgement until every accepted push's every
context is final in the GitHub fake and nothing is queued or running in the store. The
table also counts the attempts by final state and gives each invariant's verdict.

Run: ``.venv/bin/python bench/scale_out.py [--pushes 200]``. Without PostgreSQL's binaries
or the registry binary it prints why and exits 0 (``make bench`` goes on).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from tables import table  # bench/tables.py: scripts run with bench/ on sys.path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def summary_rows(outcome: Any) -> list[tuple[str, ...]]:
    """(measure, value) rows: pushes, settle time, attempts by state, then one verdict row
    per invariant ("ok", or how many times it broke and the first case)."""
    states = Counter(str(r.state) for r in outcome.attempts)
    accepted = sum(1 for a in outcome.acks if a.status == 202)
    rows: list[tuple[str, ...]] = [
        ("pushes accepted / sent", f"{accepted}/{len(outcome.acks)}"),
        ("settle time after the last push", f"{outcome.settle_seconds:.1f} s"),
        ("attempts by state", ", ".join(f"{s} {n}" for s, n in sorted(states.items()))),
    ]
    for name, broken in outcome.problems().items():
        verdict = "ok" if not broken else f"BROKEN x{len(broken)}: {broken[0][:160]}"
        rows.append((f"invariant: {name}", verdict))
    return rows


def services_missing() -> str | None:
    """Why the scenario cannot run here, or None."""
    from tests.harness.postgres import pg_bindir
    from tests.harness.registry import REGISTRY_BIN

    if not Path(REGISTRY_BIN).exists():
        return f"the registry binary {REGISTRY_BIN} is not installed"
    if pg_bindir() is None:
        return "PostgreSQL is not installed (apt-get install postgresql)"
    return None


def run(pushes: int) -> Any:
    """One run of the scenario on freshly started services, stopped afterwards."""
    from tests.harness.github_fake import GitHubFake
    from tests.harness.postgres import migrate_template, start_postgres, stop_postgres
    from tests.harness.registry import start_registry
    from tests.harness.scale_out import TOKEN
    from tests.harness.scale_out_checks import Options, run_scenario

    with tempfile.TemporaryDirectory(prefix="bench-scale-out-") as tmp:
        server, watchdog = start_postgres()
        registry = None
        github = GitHubFake()
        try:
            migrate_template(server)
            registry = start_registry(Path(tmp) / "registry", "plain")
            github.start()
            github.require_token(TOKEN)
            url = server.url(server.new_database())
            return run_scenario(
                Path(tmp) / "run", url, registry.host, github, Options(pushes=pushes)
            )
        finally:
            github.stop()
            if registry is not None:
                registry.stop()
            stop_postgres(server, watchdog)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pushes", type=int, default=200)
    args = parser.parse_args(argv)
    missing = services_missing()
    if missing:
        print(f"(scale-out scenario not run: {missing})")
        return 0
    outcome = run(args.pushes)
    print(
        table(
            f"scale-out: {args.pushes} signed pushes, 3 repos x 10 branches, gunicorn web + 3 "
            "workers on PostgreSQL; one worker kill -9ed mid-build, one SIGSTOPped past "
            "lost_after",
            ("measure", "value"),
            summary_rows(outcome),
        )
    )
    broken = {name: len(found) for name, found in outcome.problems().items() if found}
    print(
        json.dumps(
            {
                "pushes": args.pushes,
                "settle_seconds": round(outcome.settle_seconds, 2),
                "broken": broken,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
