"""Throughput beside its API bound: Shopify → hub (Salesforce) and the CRM's echo back, emulators at 50 ms.

N customers are created in the Shopify emulator; worker processes on a real ``redis-server`` poll
the shop (the scheduler's job is played by this script: one poll message per second and the
sweep), write the customers to the Salesforce emulator in sObject Collections of 200, and read
the CRM's echo of each write back (the CRM is polled too, as every system is). Nothing goes back
to the shop: its record is where the change came from. The clock stops when every customer is in
the CRM, no write is waiting, and every write's echo has been read. Every API call takes
``--latency`` seconds.

The bound: each system's calls are counted during the run; with ``c`` calls per change, a latency
``L`` and ``k`` calls in flight at once (the connector's declared concurrency, the rate limiter's
cap), that system alone allows ``k / (c × L)`` changes/s, and the slowest system bounds the whole.
The figure is achieved / bound (goal ≥ 80 %). The CPU of the worker processes and of this process
(both emulators, their TLS) is reported beside it: on a small machine, that is the limit.

    uv run python bench/throughput.py [--changes 6000] [--latency 0.05] [--workers 2] [--write-docs]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench._docs import replace_section  # noqa: E402
from bench.pipeline import quiet_logs  # noqa: E402
from connectors.salesforce import SalesforceConnector  # noqa: E402
from connectors.shopify import ShopifyConnector  # noqa: E402
from core.store.schema import golden, outbox, sync_base  # noqa: E402
from sandbox.salesforce import SalesforceEmulator  # noqa: E402
from sandbox.shopify.emulator import ShopifyEmulator  # noqa: E402
from tests.reliability import factory  # noqa: E402
from tests.workers.conftest import RedisServer, WorkerProcess  # noqa: E402
from workers.actors import declare  # noqa: E402
from workers.broker import make_broker  # noqa: E402


def run(changes: int, latency: float, workers: int, threads: int) -> dict[str, Any]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed")
    tmp = Path(tempfile.mkdtemp(prefix="synchub-bench-throughput-"))
    with SalesforceEmulator(daily_limit=10**7) as sf, ShopifyEmulator(restore_rate=100_000.0) as shop:
        for i in range(changes):
            shop.add_customer(email=f"klient{i}@example.pl", firstName=f"Klient{i}", lastName="Testowy")
        sf.faults.latency = latency
        shop.latency = latency
        redis = RedisServer(binary, tmp)
        spec = {
            "store": f"sqlite:///{tmp / 'state.db'}",
            "crm": {
                "login_url": sf.base_url,
                "client_id": sf.client_id,
                "client_secret": sf.client_secret,
                "ca_bundle": sf.ca_bundle,
                "read_lag_seconds": 1,
            },
            "shop": shop.settings(),
        }
        runtime = factory.build(spec)
        broker = make_broker(redis.url)
        actors = declare(broker)
        env = {
            **os.environ,
            "SYNCHUB_RUNTIME": "tests.reliability.factory:runtime",
            factory.ENV: json.dumps(spec),
            "SYNCHUB_BROKER_URL": redis.url,
            "SYNCHUB_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
        }
        procs = [WorkerProcess(env, tmp / f"w{n}.log", threads) for n in range(workers)]
        sf_before, shop_before = sf.api_used, len(shop.requests)
        cpu_before = sum(_cpu_seconds(p.proc.pid) for p in procs)  # their start-up (imports) is not the run's
        own_before = time.process_time()  # this process: both emulators (their TLS), the scheduler, the watcher
        started = time.perf_counter()
        last_poll = 0.0
        done_at = drained_at = None
        while time.perf_counter() - started < 900:
            now = time.perf_counter()
            if now - last_poll >= 1.0:  # the scheduler: poll the shop, poll the CRM, sweep
                actors.poll.send("shop", "customer")
                actors.poll.send("crm", "customer")
                actors.sweep.send()
                last_poll = now
            with runtime.pipeline.store.read() as conn:  # watching takes no write lock from the workers
                customers = conn.execute(select(func.count()).select_from(golden)).scalar_one()
                waiting = conn.execute(
                    select(func.count()).select_from(outbox).where(outbox.c.status.in_(("pending", "inflight", "held")))
                ).scalar_one()
                # the CRM's echo of each write read back: the base's time is the Contact's SystemModstamp
                # (a write's answer carries none), so the last step of every change is inside the timing
                echoed = conn.execute(
                    select(func.count())
                    .select_from(sync_base)
                    .where(sync_base.c.system == "crm", sync_base.c.source_ts.is_not(None))
                ).scalar_one()
            if customers >= changes and waiting == 0 and drained_at is None:
                drained_at = time.perf_counter()
            if customers >= changes and waiting == 0 and echoed >= changes:
                done_at = time.perf_counter()
                break
            time.sleep(0.1)
        elapsed = (done_at or time.perf_counter()) - started
        sf_calls = sf.api_used - sf_before
        shop_calls = len(shop.requests) - shop_before
        worker_cpu = sum(_cpu_seconds(p.proc.pid) for p in procs) - cpu_before
        own_cpu = time.process_time() - own_before
        for p in procs:
            p.close()
        broker.close()
        runtime.close()
        redis.kill()
    achieved = changes / elapsed
    limits = {
        "crm (Salesforce)": (sf_calls / changes, SalesforceConnector.rate_limit.concurrency),
        "shop (Shopify)": (shop_calls / changes, ShopifyConnector.rate_limit.concurrency),
    }
    bounds = {name: k / (c * latency) for name, (c, k) in limits.items() if c > 0}
    bound_name = min(bounds, key=lambda n: bounds[n])
    return {
        "changes": changes,
        "latency_ms": int(latency * 1000),
        "workers": f"{workers} × {threads} threads",
        "seconds": round(elapsed, 1),
        "written_s": round((drained_at or time.perf_counter()) - started, 1),
        "finished": done_at is not None,
        "achieved": round(achieved, 1),
        "calls_per_1000": {n: round(c * 1000, 1) for n, (c, _) in limits.items()},
        "concurrency": {n: k for n, (_, k) in limits.items()},
        "bounds": {n: round(b, 1) for n, b in bounds.items()},
        "bound_by": bound_name,
        "bound": round(bounds[bound_name], 1),
        "ratio": round(achieved / bounds[bound_name] * 100),
        "worker_cpu_s": round(worker_cpu, 1),
        "cores_busy": round(worker_cpu / elapsed, 2),
        "cpu_ms_per_change": round(worker_cpu / changes * 1000, 2),
        "emulator_cpu_s": round(own_cpu, 1),
        "machine_busy": round((worker_cpu + own_cpu) / elapsed, 2),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def table(r: dict[str, Any]) -> list[str]:
    rows = ["| figure | value | goal |", "| --- | ---: | ---: |"]
    rows.append(f"| changes (Shopify customers) | {r['changes']:,} | |")
    rows.append(f"| changes/s achieved (end to end, {r['seconds']} s) | {r['achieved']:,} | |")
    for name, calls in r["calls_per_1000"].items():
        rows.append(
            f"| {name}: API calls per 1,000 changes · concurrency · bound | "
            f"{calls:,} · {r['concurrency'][name]} · {r['bounds'][name]:,}/s | |"
        )
    rows.append(f"| bound (the slowest system: {r['bound_by']}) | {r['bound']:,} changes/s | |")
    rows.append(f"| achieved / bound | {r['ratio']} % | ≥ 80 % |")
    rows.append(
        f"| worker CPU: seconds · cores busy · ms per change | {r['worker_cpu_s']} · {r['cores_busy']} · "
        f"{r['cpu_ms_per_change']} | |"
    )
    rows.append(
        f"| the emulators' CPU (this process) · cores busy, workers and emulators | {r['emulator_cpu_s']} s · "
        f"{r['machine_busy']} of {os.cpu_count()} | |"
    )
    return rows


def why(r: dict[str, Any]) -> list[str]:
    """The reading of the figures, when the goal is missed."""
    if r["ratio"] >= 80:
        return []
    calls = ", ".join(f"{n} {c}" for n, c in r["calls_per_1000"].items())
    cores = os.cpu_count() or 1
    needed = r["bound"] * r["cpu_ms_per_change"] / 1000
    return [
        "",
        f"**Why the goal is missed: CPU, not the APIs.** Batching leaves the APIs little to do ({calls} calls "
        f"per 1,000 changes), so at {r['latency_ms']} ms a call the APIs alone would allow {r['bound']:,} "
        f"changes/s. The run is bound by the machine: the worker processes used {r['cpu_ms_per_change']} ms "
        f"of CPU per change, and with both emulators (in production, the vendors' servers) "
        f"{r['machine_busy']} of its {cores} cores were busy. At the bound the workers alone would need "
        f"{needed:.1f} cores. Every change is ingested twice with the shipped mappings (the shop's change, "
        "then the CRM's echo of our write), through HTTP/TLS clients and JSON, into a store with one "
        "writer at a time.",
        "",
        "Found and fixed on 2026-12-03 by profiling this run (`py-spy --gil` on the workers and on the "
        "emulators): polls of one entity overlapped — the scheduler's every second, and every CRM flush's "
        "read-before-write — and each read and ingested every page from the same saved cursor again "
        "(6,000 customers: 405 shop page reads, against 60–90 now with each second's idle poll; 3.4 ms "
        "of worker CPU per change); now one "
        "poll of an entity runs at a time (`core/sync/polling.py`, the lease shared through Redis). And the "
        "Salesforce emulator scanned every record of the object on each save for external-id and unique "
        "values (quadratic: it used 18 s of CPU in a 6,000-change run); it now keeps an index. This script "
        "on the code before both fixes (`efcbd64`), the same day: 86.8 changes/s, the shop read 119.2 times "
        "per 1,000 changes, 4.69 ms of worker CPU per change, 64.8 s of emulator CPU. An earlier version of "
        "this bench stopped the clock before the CRM's echo was read, and ran 2,000 changes, where filling "
        "and draining the pipeline is most of the run.",
        "",
        "What would close the gap: less CPU per change (a chunk's writes batched like its reads, see *Own "
        "overhead per CPU core*), the PostgreSQL store with more worker processes on a machine with more "
        "cores, and — for the bench itself — the emulators' remaining scans (the Shopify emulator filters "
        "and sorts every customer for each page it serves; a SOQL query scans its object), which grow "
        "with the data and share the machine with the workers.",
        "",
        "Throughput here is about one over the worker CPU per change, because nearly all of it runs inside "
        "the store's one write transaction at a time: a second worker process, or the idle part of the "
        "second core, cannot help (2026-12-03: 2 processes × 2 threads, 1 × 8, 3 × 2 and 2 × 4 all gave "
        "375–450 changes/s; `sys.setswitchinterval(0.001)` in the workers gave less). Not the way out, "
        "measured the same day: recognising the CRM's echo before the write lock (a record equal to its "
        "sync base needs only its base's time moved). The first echo of each of our writes is not equal: "
        "it brings the CRM's own fields (its created and modified times, consent defaults, empty region "
        "and birth date) that the base of what we sent lacks, so it needs the whole ingest — 0 of 2,000 "
        "echoes were equal in this bench.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--changes", type=int, default=6000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    quiet_logs()
    result = run(args.changes, args.latency, args.workers, args.threads)
    print("\n".join(table(result)))
    if not result["finished"]:
        print("did not finish within 900 s")
    if args.write_docs:
        command = "uv run python bench/throughput.py " + " ".join(a for a in sys.argv[1:] if a != "--write-docs")
        replace_section(
            "\n".join(
                [
                    "## Throughput beside the API bound",
                    "",
                    f"Command: `{command.strip()}` — {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
                    f"{os.cpu_count()} logical CPUs, worker processes on redis-server, SQLite store. Shopify → hub "
                    f"(Salesforce emulator), the CRM's echo of each write read back; every API call "
                    f"{result['latency_ms']} ms. The bound is each system's `concurrency / (calls per change × "
                    "latency)`; the slowest system's is the pipeline's.",
                    "",
                    *table(result),
                    *why(result),
                    "",
                ]
            )
        )


if __name__ == "__main__":
    main()
