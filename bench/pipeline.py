"""Changes per second through the in-process sync pipeline, on SQLite and on PostgreSQL.

What runs: a CRM hub and two spokes, each a real memory connector with the mappings of the
sync-core tests (tests/sync/mappings/). N/2 customers are created in the shop, then N/2 edits land
on random ones; every change goes shop → poll → identity → merge → golden record → outbox → CRM and
the other spoke, written in batches. Zero-latency connectors: this is the cost of synchub itself.

    uv run python bench/pipeline.py                 # 100,000 changes, SQLite and PostgreSQL
    uv run python bench/pipeline.py --changes 10000 --backend sqlite
    uv run python bench/pipeline.py --write-docs    # also update docs/benchmarks.md

Peak RSS is the process's (``ru_maxrss``), so it includes the memory connectors' own copies of every
record (three systems × N/2 customers); each backend runs in a child process of its own so the
figures do not mix.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._docs import replace_section  # noqa: E402
from connectors.memory import MemoryConnector  # noqa: E402
from core.store.db import SqliteTuning, Store  # noqa: E402
from core.sync.pipeline import Pipeline  # noqa: E402
from core.sync.systems import System, Systems  # noqa: E402
from mappings.loader import load_mapping  # noqa: E402

MAPPINGS = ROOT / "tests" / "sync" / "mappings"
FIRST = ["Anna", "Jan", "Zofia", "Piotr", "Łucja", "Mikołaj", "Żaneta", "Grzegorz"]
LAST = ["Nowak", "Kowalski", "Wiśniewska", "Wójcik", "Kamińska", "Lewandowski", "Zieliński"]
CITIES = ["Kraków", "Gdańsk", "Poznań", "Łódź", "Wrocław", "Warszawa"]


def build(url: str, sqlite: SqliteTuning | None = None) -> tuple[Pipeline, dict[str, MemoryConnector]]:
    conns = {name: MemoryConnector(name) for name in ("crm", "shop", "pos")}
    shop = load_mapping(MAPPINGS / "shop.yaml")
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "both"}, conns["crm"]),
        spokes={
            "shop": System("shop", "shopify", shop, {"customer": "both"}, conns["shop"]),
            "pos": System("pos", "pos", load_mapping(MAPPINGS / "pos.yaml"), {"customer": "in"}, conns["pos"]),
        },
    )
    # read_before_write off: in this run nothing edits the targets between polls, so the extra
    # read per batch would only measure the memory connector.
    return Pipeline(Store(url, sqlite=sqlite), systems, read_before_write=False), conns


def quiet_logs() -> None:
    import logging

    import structlog

    # per-change INFO lines to a terminal would measure the terminal; WARNING and up still print
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


def customer(i: int, rng: random.Random) -> dict[str, Any]:
    """The shop's native form of benchmark customer ``i``."""
    return {
        "firstName": rng.choice(FIRST),
        "lastName": rng.choice(LAST),
        "email": f"customer{i}@example.pl",
        "phone": f"+48 6{i:08d}",
        "address": {"city": rng.choice(CITIES)},
        "tags": ["web"],
    }


def seed_customers(shop: Any, count: int, seed: int) -> list[str]:
    """Create ``count`` customers in the shop (a MemorySystem); their native ids."""
    rng = random.Random(seed)
    return [shop.put("customer", customer(i, rng)) for i in range(count)]


def run(url: str, changes: int, seed: int) -> dict[str, Any]:
    quiet_logs()
    rng = random.Random(seed)
    pipeline, conns = build(url)
    shop = conns["shop"].system
    creates = changes // 2
    edits = changes - creates
    ids = seed_customers(shop, creates, seed)
    c0, t0 = time.process_time(), time.perf_counter()
    pipeline.drain()
    t_create = time.perf_counter() - t0
    cpu_create = time.process_time() - c0
    for n in range(edits):
        shop.edit("customer", rng.choice(ids), note=f"edit {n}", address={"city": rng.choice(CITIES)})
    c1, t1 = time.process_time(), time.perf_counter()
    pipeline.drain()
    t_edit = time.perf_counter() - t1
    cpu_edit = time.process_time() - c1
    total = t_create + t_edit
    crm_records = len(conns["crm"].system.live("customer"))
    assert crm_records == creates, f"lost or duplicated records: {crm_records} in the CRM for {creates} created"
    pipeline.store.close()
    return {
        "changes": changes,
        "seconds": round(total, 2),
        "changes_per_s": round(changes / total),
        "cpu_seconds": round(cpu_create + cpu_edit, 2),
        "changes_per_cpu_s": round(changes / (cpu_create + cpu_edit)),
        "creates_per_s": round(creates / t_create),
        "edits_per_s": round(edits / t_edit) if edits else None,
        "crm_write_calls": conns["crm"].calls,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def _child(backend: str, changes: int, seed: int, queue: Any) -> None:
    try:
        _measure(backend, changes, seed, queue)
    except BaseException as exc:  # the parent waits on the queue: tell it, then fail
        queue.put({"error": repr(exc)})
        raise


def _measure(backend: str, changes: int, seed: int, queue: Any) -> None:
    if backend == "sqlite":
        tmp = tempfile.mkdtemp(prefix="synchub-bench-")
        queue.put(run(f"sqlite:///{tmp}/state.db", changes, seed))
        return
    from sandbox.postgres import PostgresServer

    server = PostgresServer()
    try:
        queue.put(run(server.fresh_database(), changes, seed))
    finally:
        server.stop()


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} {platform.release()}"
    )


def write_docs(results: dict[str, dict[str, Any]], command: str) -> None:
    lines = [
        "## Sync pipeline (in-process)",
        "",
        f"Command: `{command}` — {datetime.now(UTC):%Y-%m-%d}, {machine()}.",
        "",
        "Shop → hub → spokes through the whole pipeline (poll, identity, 3-way merge, golden record, outbox,",
        "batched writes) with zero-latency memory connectors; one process. Half the changes create",
        "customers, half edit random existing ones. The machine's two cores are shared with other work",
        "at times, so wall-clock figures vary from run to run; *changes per CPU-second* counts only this",
        "process's CPU (on PostgreSQL the server's CPU is not in it: see *Own overhead per CPU core*).",
        "Peak RSS includes the three memory connectors' copies of every record and SQLite's page cache.",
        "",
        "| store | changes | seconds | changes/s | changes per CPU-s | creates/s | edits/s | CRM write calls "
        "| peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for backend, r in results.items():
        lines.append(
            f"| {backend} | {r['changes']:,} | {r['seconds']} | {r['changes_per_s']:,} | {r['changes_per_cpu_s']:,} | "
            f"{r['creates_per_s']:,} | {r['edits_per_s']:,} | {r['crm_write_calls']:,} | {r['peak_rss_mb']} MB |"
        )
    lines.append("")
    replace_section("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--changes", type=int, default=100_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    results: dict[str, dict[str, Any]] = {}
    ctx = multiprocessing.get_context("spawn")
    for backend in backends:
        queue = ctx.Queue()
        proc = ctx.Process(target=_child, args=(backend, args.changes, args.seed, queue))
        proc.start()
        result = queue.get()
        proc.join()
        if "error" in result:
            sys.exit(f"{backend}: {result['error']}")
        results[backend] = result
        print(json.dumps({"backend": backend, **result}))
    if args.write_docs:
        write_docs(
            results, "uv run python bench/pipeline.py " + " ".join(sys.argv[1:]).replace("--write-docs", "").strip()
        )


if __name__ == "__main__":
    main()
