"""Worker throughput: N changes through 1, 2 and 4 worker processes on Redis to a 20 ms target.

Each run: a fresh SQLite state store and a fresh ``redis-server``; N changes land in the inbox;
``python -m workers worker`` processes start; one ``process_inbox`` message is sent, and the
clock runs until every inbox row is done and every outbox row written. The target
(``sandbox.http_target``) answers every batch call after ``--latency`` seconds. Prints figures
only; nothing is asserted.

    uv run python bench/workers.py [--changes 2000] [--procs 1 2 4] [--threads 4] [--latency 0.02]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._docs import replace_section  # noqa: E402
from core.store.schema import inbox, outbox  # noqa: E402
from sandbox.http_target import HttpTarget  # noqa: E402
from tests.workers.conftest import RedisServer, WorkerProcess  # noqa: E402
from tests.workers.factory import build  # noqa: E402
from workers.actors import declare  # noqa: E402
from workers.broker import make_broker  # noqa: E402


def run_once(changes: int, procs: int, threads: int, latency: float) -> dict[str, float]:
    tmp = Path(tempfile.mkdtemp(prefix="synchub-bench-workers-"))
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    server = RedisServer(binary, tmp)
    store_url = f"sqlite:///{tmp / 'state.db'}"
    with HttpTarget(latency=latency) as target:
        runtime = build(store_url, target.url)
        at = datetime.now(UTC).isoformat()
        for i in range(changes):
            record = {"id": f"s{i}", "firstName": "Ann", "lastName": f"N{i}", "email": f"c{i}@example.pl"}
            runtime.pipeline.accept("shop", "customer", f"e{i}", {**record, "updated_at": at})
        env = {
            **os.environ,
            "SYNCHUB_RUNTIME": "tests.workers.factory:runtime",
            "SYNCHUB_STORE_URL": store_url,
            "SYNCHUB_TARGET_URL": target.url,
            "SYNCHUB_BROKER_URL": server.url,
            "PYTHONPATH": str(ROOT),
        }
        workers = [WorkerProcess(env, tmp / f"w{n}.log", threads) for n in range(procs)]
        broker = make_broker(server.url)
        actors = declare(broker)
        started = time.perf_counter()
        # one message per worker: each takes the backlog a chunk at a time, claiming its rows as it goes
        for _ in range(procs):
            actors.process_inbox.send()
        last_sweep = started
        while True:
            with runtime.pipeline.store.inbox.read() as conn:
                left_in = conn.execute(
                    select(func.count()).select_from(inbox).where(inbox.c.status.in_(("pending", "processing")))
                ).scalar()
            with runtime.pipeline.store.read() as conn:
                left_out = conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.status.in_(("pending", "inflight")))
                ).scalar()
            if not left_in and not left_out:
                break
            if time.perf_counter() - last_sweep > 5:
                actors.sweep.send()
                last_sweep = time.perf_counter()
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        calls = target.state.calls
        written = len(target.live("customer"))
        for w in workers:
            w.terminate()
            w.close()
        broker.close()
        runtime.close()
    server.kill()
    shutil.rmtree(tmp, ignore_errors=True)
    return {"seconds": elapsed, "per_second": changes / elapsed, "calls": calls, "written": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=2000)
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--write-docs", action="store_true", help="also update docs/benchmarks.md")
    args = parser.parse_args()
    from sandbox.http_target import HttpTargetConnector

    batch = HttpTargetConnector.batch_size
    concurrency = HttpTargetConnector.rate_limit.concurrency
    head = (
        f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; {args.changes} changes, "
        f"{args.threads} threads/process, target latency {args.latency * 1000:.0f} ms, batch {batch}, "
        f"{concurrency} concurrent calls allowed"
    )
    print("# " + head)
    print(f"{'procs':>5} {'seconds':>8} {'changes/s':>10} {'calls':>6} {'calls/1k':>9} {'bound/s':>8} {'records':>8}")
    rows = []
    for procs in args.procs:
        r = run_once(args.changes, procs, args.threads, args.latency)
        # what latency and batching allow: every allowed concurrent call carries a full batch
        bound = min(procs * args.threads, concurrency) * batch / args.latency
        per_1k = r["calls"] * 1000 / args.changes
        rows.append((procs, r, per_1k, bound))
        print(
            f"{procs:>5} {r['seconds']:>8.2f} {r['per_second']:>10.0f} {r['calls']:>6.0f} {per_1k:>9.1f} "
            f"{bound:>8.0f} {r['written']:>8.0f}"
        )
    if args.write_docs:
        _write_docs(head, rows, args)


def _write_docs(head: str, rows: list[tuple[int, dict[str, float], float, float]], args: argparse.Namespace) -> None:
    lines = [
        "## Workers on Redis",
        "",
        f"Command: `uv run python bench/workers.py --changes {args.changes} --write-docs` — "
        f"{datetime.now(UTC):%Y-%m-%d}; {head}.",
        "",
        "Changes land in the inbox (SQLite state store); `python -m workers worker` processes on a real",
        "`redis-server` ingest them and flush the outbox in batches to the HTTP target",
        "(`sandbox/http_target.py`), which answers each call after the given latency. The bound is what",
        "latency and batching allow the writes alone: concurrent calls × batch ÷ latency.",
        "",
        "| worker processes | seconds | changes/s | API calls | calls per 1,000 changes | write bound (changes/s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for procs, r, per_1k, bound in rows:
        lines.append(
            f"| {procs} | {r['seconds']:.2f} | {r['per_second']:.0f} | {r['calls']:.0f} | {per_1k:.1f} | {bound:,.0f} |"
        )
    lines += [
        "",
        "More processes do not help here: the writes are far below their bound, and the time goes into",
        "ingesting the inbox — a chunk of up to 50 rows per transaction, read at once (since 2026-12-03;",
        "180 changes/s on 2026-11-23, one transaction per change) — against one SQLite file, which has one",
        "writer at a time, on a 2-core machine the processes share. See *Own overhead per CPU core* for the",
        "per-change cost and what would cut it; PostgreSQL is the store for parallel writers.",
        "",
    ]
    replace_section("\n".join(lines))


if __name__ == "__main__":
    main()
