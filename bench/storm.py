"""The fault storm at any size (tests/reliability/storm.py): changes, faults of every kind, and
whether anything was lost, duplicated or left unconverged; ``--write-docs`` puts the report in
docs/reliability.md.

    uv run python bench/storm.py --changes 10000 --seed 7 --write-docs
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._docs import replace_section
from bench.pipeline import quiet_logs
from tests.reliability.storm import Storm, StormConfig

RELIABILITY = Path(__file__).resolve().parent.parent / "docs" / "reliability.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--changes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--min-faults", type=int, default=20, help="at least this many faults of each kind")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--stock-updates", type=int, default=100, help="how many of the changes are stock moves on a real Tryton"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        help="run in this (new) directory and keep it: the store, worker logs, to see what happened",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    quiet_logs()
    config = StormConfig(
        changes=args.changes,
        seed=args.seed,
        min_faults=args.min_faults,
        workers=args.workers,
        stock_updates=args.stock_updates,
    )
    if args.keep is not None:
        args.keep.mkdir(parents=True)
        report = Storm(args.keep, config).run()
    else:
        with tempfile.TemporaryDirectory(prefix="synchub-storm-") as tmp:
            report = Storm(Path(tmp), config).run()
    print(report.table())
    for name, items in (("lost", report.lost), ("duplicates", report.duplicates), ("unconverged", report.unconverged)):
        for item in items[:10]:
            print(f"{name}: {item}")
    if args.write_docs:
        command = "uv run python bench/storm.py " + (
            f"--changes {args.changes} --stock-updates {args.stock_updates} --seed {args.seed}"
        )
        replace_section(
            "\n".join(
                [
                    f"## Fault storm: {args.changes:,} changes",
                    "",
                    f"Command: `{command}` — {datetime.now(UTC):%Y-%m-%d}, on {platform.machine()} with "
                    f"{os.cpu_count()} logical CPUs ({config.workers} worker processes × {config.threads} threads). "
                    "What it does: [tests/reliability/storm.py](../tests/reliability/storm.py).",
                    "",
                    report.table(),
                    "",
                ]
            ),
            RELIABILITY,
        )
    sys.exit(0 if not (report.lost or report.duplicates or report.unconverged) else 1)


if __name__ == "__main__":
    main()
