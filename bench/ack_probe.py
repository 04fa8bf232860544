"""Where a webhook's acknowledgement time goes: bench/latency.py's run, with timings inside the app.

Wraps (in the web app's process: bench/latency.py imports this module there, named by
``SYNCHUB_BENCH_WEB_PROBE``, and calls ``dump`` when it stops) the ASGI app, Starlette's thread pool hand-off,
``Pipeline.accept`` (the wait for SQLite's write lock or for the group commit holding it, the
INSERT, the COMMIT) and the Redis enqueue, and prints, for all requests and for the slowest 5 % and
1 %, where the wall time went, next to the acknowledgement the sender saw (its own process); and, from the worker
processes, how long each of their transactions held the write lock (and how much of that the
holder spent on a CPU).

    uv run python bench/ack_probe.py [--rate 50] [--seconds 30] [--workers 2]
"""

from __future__ import annotations

import argparse
import contextvars
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dramatiq  # noqa: E402

import core.web.app as web_app_module  # noqa: E402
from bench import latency  # noqa: E402
from core.sync import pipeline as pipeline_module  # noqa: E402

records: dict[str, dict[str, float]] = {}
current: contextvars.ContextVar[dict[str, float] | None] = contextvars.ContextVar("probe", default=None)
local = threading.local()
clock = time.perf_counter


def record() -> dict[str, float] | None:
    return getattr(local, "rec", None) or current.get()


# --- the ASGI app: from the request reaching the app to its answer starting ------------------------
_create_app = web_app_module.create_app


def create_app(*a: Any, **kw: Any) -> Any:
    app = _create_app(*a, **kw)

    async def probe(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/webhooks/"):
            await app(scope, receive, send)
            return
        event = dict(scope["headers"]).get(b"x-shopify-event-id", b"").decode()
        rec = records.setdefault(event, {})
        token = current.set(rec)
        t0 = clock()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                rec["app"] = clock() - t0
            await send(message)

        try:
            await app(scope, receive, timed_send)
        finally:
            current.reset(token)

    probe.state = app.state  # type: ignore[attr-defined]
    return probe


web_app_module.create_app = create_app  # type: ignore[assignment]
import workers.run  # noqa: E402

workers.run.create_app = create_app  # type: ignore[assignment]

# --- the thread pool: waiting for a thread, and the thread's CPU time ------------------------------
_run_in_threadpool = web_app_module.run_in_threadpool


async def run_in_threadpool(fn: Any, *a: Any, **kw: Any) -> Any:
    rec = current.get()
    called = clock()

    def timed(*a: Any, **kw: Any) -> Any:
        if rec is not None:
            rec["pool_wait"] = rec.get("pool_wait", 0.0) + clock() - called
            local.rec = rec
        cpu0, w0 = time.thread_time(), clock()
        try:
            return fn(*a, **kw)
        finally:
            if rec is not None:
                name = getattr(fn, "__name__", "fn")
                rec[f"{name}_wall"] = rec.get(f"{name}_wall", 0.0) + clock() - w0
                rec[f"{name}_cpu"] = rec.get(f"{name}_cpu", 0.0) + time.thread_time() - cpu0
            local.rec = None

    return await _run_in_threadpool(timed, *a, **kw)


web_app_module.run_in_threadpool = run_in_threadpool  # type: ignore[assignment]


def timed(key: str, fn: Any) -> Any:
    """``fn`` (a method), its time added to the current webhook's record under ``key``."""

    def wrapper(self: Any, *a: Any, **kw: Any) -> Any:
        rec = record()
        t0 = clock()
        try:
            return fn(self, *a, **kw)
        finally:
            if rec is not None:
                rec[key] = rec.get(key, 0.0) + clock() - t0

    return wrapper


# Pipeline.accept: the INSERT and its commit, with the wait for the write lock (or for the leader of
# the group commit that holds it); and the Redis enqueue (send_with_options: what send() calls too,
# and what a delayed wake-up calls itself)
pipeline_module.Pipeline.accept = timed("accept", pipeline_module.Pipeline.accept)  # type: ignore[method-assign]
dramatiq.Actor.send_with_options = timed("redis", dramatiq.Actor.send_with_options)  # type: ignore[method-assign]


# --- the workers: how long each of their transactions holds the write lock, and where it began ------
HOLDS = "SYNCHUB_PROBE_HOLDS"


def worker_runtime() -> Any:
    """``SYNCHUB_RUNTIME`` of the probed workers: the bench's runtime, its engine timed."""
    import os

    from sqlalchemy import event

    from tests.reliability import factory

    rt = factory.runtime()
    out = open(os.environ[HOLDS] + f".{os.getpid()}", "a", buffering=1)  # noqa: SIM115
    held = threading.local()

    @event.listens_for(rt.pipeline.store.engine, "begin")
    def _begun(conn: Any) -> None:  # registered after db.py's: BEGIN IMMEDIATE has returned
        frame, where = sys._getframe(1), "?"
        while frame is not None:
            name = frame.f_code.co_filename
            if ("/core/" in name or "/workers/" in name) and "/store/db.py" not in name:
                where = f"{Path(name).name}:{frame.f_code.co_name}"
                break
            frame = frame.f_back  # type: ignore[assignment]
        if conn.get_execution_options().get("synchub_read"):
            where += "(read)"  # a deferred BEGIN: no write lock held
        held.t, held.cpu, held.where = clock(), time.thread_time(), where

    def _ended(conn: Any) -> None:
        t = getattr(held, "t", None)
        if t is not None:
            cpu = (time.thread_time() - held.cpu) * 1000
            out.write(f"{time.time():.4f} {(clock() - t) * 1000:.3f} {cpu:.3f} {held.where}\n")
            held.t = None

    event.listen(rt.pipeline.store.engine, "commit", _ended)
    event.listen(rt.pipeline.store.engine, "rollback", _ended)
    return rt


def holds_summary(prefix: str) -> None:
    import glob
    from collections import defaultdict

    by: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, list[float]] = defaultdict(list)
    for path in glob.glob(prefix + ".*"):
        for line in open(path):  # noqa: SIM115
            _, ms, cpu, where = line.split()
            by[where].append(float(ms))
            cpus[where].append(float(cpu))
    print("worker transactions holding the write lock: count, total s, mean / p99 / max ms, CPU s of the holder")
    for where, vals in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        vals.sort()
        print(
            f"  {where:40s} {len(vals):6d} {sum(vals) / 1000:7.2f} {statistics.fmean(vals):7.2f} "
            f"{vals[round(0.99 * (len(vals) - 1))]:7.2f} {vals[-1]:8.2f} {sum(cpus[where]) / 1000:7.2f}"
        )


def dump(path: Path) -> None:
    """In the web app's process, as it stops: the timings of every webhook, by event id."""
    path.write_text(json.dumps(records))


def summary(rows: list[dict[str, float]], title: str) -> None:
    keys = ["ack", "app", "pool_wait", "land_wall", "land_cpu", "accept", "redis"]
    print(f"{title} (n={len(rows)}): mean ms / p50 / p99 / max")
    for k in keys:
        vals = [r[k] * 1000 for r in rows if k in r]
        if not vals:
            continue
        vals.sort()
        print(
            f"  {k:13s} {statistics.fmean(vals):8.2f} {vals[len(vals) // 2]:8.2f} "
            f"{vals[min(len(vals) - 1, round(0.99 * (len(vals) - 1)))]:8.2f} {vals[-1]:8.2f}"
        )
    outside = [(r["ack"] - r["app"]) * 1000 for r in rows if "ack" in r and "app" in r]
    if outside:
        print(f"  {'outside app':13s} {statistics.fmean(outside):8.2f} (mean; HTTP, event loop, sender)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    latency.quiet_logs()
    import os
    import tempfile

    holds = tempfile.mktemp(prefix="synchub-probe-holds-")
    _worker = latency.WorkerProcess

    def probed_worker(env: dict[str, str], *a: Any, **kw: Any) -> Any:
        env = {**env, "SYNCHUB_RUNTIME": "bench.ack_probe:worker_runtime", HOLDS: holds}
        return _worker(env, *a, **kw)

    latency.WorkerProcess = probed_worker  # type: ignore[assignment,misc]
    os.environ.setdefault(HOLDS, holds)
    os.environ["SYNCHUB_BENCH_WEB_PROBE"] = "bench.ack_probe"  # the web app's process imports this module
    keep = Path(tempfile.mkdtemp(prefix="synchub-probe-"))
    result = latency.run(args.rate, args.seconds, args.workers, args.threads, keep=keep)
    print({k: v for k, v in result.items() if k.startswith(("ack", "e2e"))})
    records.update(json.loads((keep / "accepts.probe.json").read_text()))
    for event, took in json.loads((keep / "sent.json").read_text())["acks"].items():
        records.setdefault(event, {})["ack"] = took
    rows = [r for r in records.values() if "ack" in r]
    rows.sort(key=lambda r: r["ack"])
    summary(rows, "all")
    summary(rows[-max(1, len(rows) // 20) :], "slowest 5 %")
    summary(rows[-max(1, len(rows) // 100) :], "slowest 1 %")
    holds_summary(holds)


if __name__ == "__main__":
    main()
