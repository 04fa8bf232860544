"""What one change of bench/throughput costs the workers, step by step, in CPU.

bench/throughput measures the whole deployment (worker processes, Redis, the emulators at 50 ms a
call) and finds it bound by the workers' CPU. This runs the same workload — the same emulators and
customers, the test rig's deployment — in one process without Redis: poll the shop, poll the CRM,
flush every system, until every change's echo is read. Each step is timed in the CPU time of the
thread that runs it (``time.thread_time``; the emulators serve from threads of their own, which
are not counted), exclusive of the steps it calls: a flush's read-before-write of the CRM counts as
a CRM read and CRM ingests, not as the flush.

Steps: ``read`` is a connector's ``read_changes`` (HTTP, TLS, JSON, the cursor; outside the store's
write lock; the page read ahead runs in a thread of its own and is counted there); ``ingest`` is the
pipeline ingesting one record (mapping, identity, merge, the store's reads and writes: inside the
write lock); ``flush`` is the rest of writing to a system (claiming outbox rows, the connector's
write call, recording the answers). ``other`` is the rest of the polling thread: cursors, chunk
transactions and their commits, the prefetch of a chunk.

    uv run python bench/steps.py [--changes 6000] [--latency 0.05] [--write-docs]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._docs import command, replace_section  # noqa: E402
from bench.pipeline import quiet_logs  # noqa: E402
from bench.throughput import deployment, emulators  # noqa: E402
from core.store.schema import sync_base  # noqa: E402
from tests.reliability import factory  # noqa: E402


class _Clock:
    """Exclusive thread-CPU time per step: a step's nested steps are charged to themselves."""

    def __init__(self) -> None:
        self.spent: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self._local = threading.local()
        self._lock = threading.Lock()

    def timed(self, step: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` timed as ``step`` (or the name ``step(*args)`` gives)."""

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            stack: list[list[Any]] = self._local.__dict__.setdefault("stack", [])
            now = time.thread_time()
            if stack:  # the caller's time stops while this step runs
                stack[-1][1] += now - stack[-1][2]
            stack.append([step if isinstance(step, str) else step(*args), 0.0, now])
            try:
                return fn(*args, **kwargs)
            finally:
                name, own, since = stack.pop()
                end = time.thread_time()
                with self._lock:
                    self.spent[name] += own + end - since
                    self.calls[name] += 1
                if stack:
                    stack[-1][2] = end

        return wrapper


def run(changes: int, latency: float) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="synchub-bench-steps-"))
    sf_emulator, shop_emulator = emulators(changes, latency)
    with sf_emulator as sf, shop_emulator as shop:
        runtime = factory.build(deployment(sf, shop, tmp))
        pipeline = runtime.pipeline
        clock = _Clock()
        # instance attributes: the pipeline's own calls (self._ingest, connector.read_changes) go
        # through the timers; the classes are left as they are
        pipeline._ingest = clock.timed(  # type: ignore[method-assign]
            lambda _conn, system, *_: f"ingest {system}", pipeline._ingest
        )
        pipeline.flush = clock.timed(lambda system, *_: f"flush {system}", pipeline.flush)  # type: ignore[method-assign]
        names = [s.name for s in pipeline.systems.all() if s.connector is not None]
        for system in pipeline.systems.all():
            if system.connector is not None:
                connector = system.connector
                connector.read_changes = clock.timed(  # type: ignore[method-assign]
                    f"read {system.name}", connector.read_changes
                )
        started = time.perf_counter()
        while time.perf_counter() - started < 900:

            def cycle() -> None:
                pipeline.poll("shop", "customer")
                pipeline.poll("crm", "customer")
                for name in names:
                    while pipeline.flush(name).written:
                        pass

            clock.timed("other", cycle)()
            with pipeline.store.read() as conn:
                echoed = conn.execute(
                    select(func.count())
                    .select_from(sync_base)
                    .where(sync_base.c.system == "crm", sync_base.c.source_ts.is_not(None))
                ).scalar_one()
            if echoed >= changes:
                break
            time.sleep(0.2)  # the CRM is read 1 s behind: its echoes come in over the next seconds
        runtime.close()
    rows = {step: (clock.calls[step], clock.spent[step]) for step in sorted(clock.spent, key=lambda s: -clock.spent[s])}
    counted = sum(spent for _, spent in rows.values())
    return {
        "changes": changes,
        "latency_ms": int(latency * 1000),
        "seconds": round(time.perf_counter() - started, 1),
        "finished": echoed >= changes,
        "steps": {s: {"calls": n, "us_per_change": round(spent / changes * 1e6)} for s, (n, spent) in rows.items()},
        "us_per_change": round(counted / changes * 1e6),
    }


def table(r: dict[str, Any]) -> list[str]:
    rows = ["| step | calls | CPU µs per change | share |", "| --- | ---: | ---: | ---: |"]
    total = r["us_per_change"] or 1
    for step, v in r["steps"].items():
        rows.append(f"| {step} | {v['calls']:,} | {v['us_per_change']:,} | {v['us_per_change'] / total:.0%} |")
    rows.append(f"| all steps | | {r['us_per_change']:,} | |")
    return rows


def _share(r: dict[str, Any], kind: str) -> str:
    part = sum(v["us_per_change"] for step, v in r["steps"].items() if step.startswith(kind + " "))
    return f"{part / (r['us_per_change'] or 1):.0%}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--changes", type=int, default=6000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    quiet_logs()
    result = run(args.changes, args.latency)
    print("\n".join(table(result)))
    if not result["finished"]:
        print("did not finish within 900 s")
    if args.write_docs:
        replace_section(
            "\n".join(
                [
                    "## Throughput: what one change costs, by step",
                    "",
                    f"Command: `{command()}` — {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
                    f"{os.cpu_count()} logical CPUs. The workload of *Throughput beside the API bound* "
                    f"({result['changes']:,} shop customers to the CRM and the CRM's echo back, every call "
                    f"{result['latency_ms']} ms) in one process without Redis: poll the shop, poll the CRM, flush, "
                    "until every echo is read. Each step in the CPU time of the thread that ran it, without the "
                    "steps it called (`time.thread_time`; the emulators' threads are not counted). `ingest` runs "
                    "inside the store's write lock, `read` outside it; `flush` is claiming, the write call and "
                    "recording the answers; `other` the polling thread's cursors, chunk transactions, commits "
                    "and prefetches.",
                    "",
                    *table(result),
                    "",
                    "The worker processes of bench/throughput spend more per change than the sum here (their "
                    "Redis messages, rate limiters and poll leases, and two processes sharing the store's lock). "
                    "The ingest of a shop customer creates the golden record (identity keys, history of every "
                    "field, the CRM's outbox row); the CRM's echo changes a few fields (the CRM's own times and "
                    f"defaults). The two ingests are {_share(result, 'ingest')} of the CPU and the flushes "
                    f"{_share(result, 'flush')}: halving the CPU per change, which the throughput goal needs on "
                    "this machine, cannot come from one step alone.",
                    "",
                ]
            )
        )


if __name__ == "__main__":
    main()
