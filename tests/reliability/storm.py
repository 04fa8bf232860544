"""The fault storm: thousands of changes from the shop's webhooks and from CRM edits while, at
random, workers die by SIGKILL, Redis restarts empty, the APIs answer 500/503/429 or too late,
latency jitters, and webhooks come twice or out of order. Then: did every change take effect
exactly once, everywhere?

Everything is real except the SaaS systems, which are the emulators under sandbox/: a redis-server
started here (no persistence: a restart loses every message), a SQLite store file shared by every
process, the web app (uvicorn) taking the Shopify emulator's signed webhooks, and worker processes
(``python -m workers worker``) built by ``tests.reliability.factory``. The driver plays the
scheduler too (polls and the sweep, every half second).

Ground truth is kept by the driver: every person is created in the shop; some are then edited only
in the shop, others only in the CRM (so the expected final value of each is well defined: the last
edit made to it). Faults are counted by the injector as it injects them, not estimated.

``Storm(tmp, StormConfig(...)).run()`` returns a :class:`Report`; ``tests/reliability/test_storm.py``
runs the CI size, ``bench/storm.py`` any size.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from sqlalchemy import func, select

from connectors.shopify import ShopifyConnector
from core.store.schema import dead_letters, golden, inbox, outbox
from core.sync.reconcile import reconcile
from core.web.server import ServerThread
from sandbox.salesforce import SalesforceEmulator
from sandbox.shopify.emulator import ShopifyEmulator
from tests.reliability import factory
from tests.workers.conftest import RedisServer, WorkerProcess
from workers.actors import Actors, declare
from workers.broker import make_broker
from workers.run import web_app

FAULT_KINDS = (
    "worker SIGKILL",
    "Redis restart (data lost)",
    "HTTP 500",
    "HTTP 503",
    "HTTP 429",
    "timeout (late answer)",
    "latency jitter",
    "webhook duplicated",
    "webhooks reordered",
)


@dataclass
class StormConfig:
    changes: int = 2000
    seed: int = 7
    min_faults: int = 20
    """At least this many faults of every kind (the run lasts until each kind has them)."""
    workers: int = 2
    threads: int = 4
    timeout: float = 1.5
    """The connectors' HTTP timeout; a late answer comes after it."""
    settle_timeout: float = 300.0


@dataclass
class Report:
    changes: int = 0
    by_source: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    unconverged: list[str] = field(default_factory=list)
    dead_letters: int = 0
    load_seconds: float = 0.0
    converge_seconds: float = 0.0
    reconcile_repairs: int = 0

    def table(self) -> str:
        sources = ", ".join(f"{k} {v:,}" for k, v in sorted(self.by_source.items()))
        rows = ["| figure | value |", "| --- | ---: |", f"| changes sent | {self.changes:,} ({sources}) |"]
        rows += [f"| faults: {kind} | {self.faults[kind]:,} |" for kind in FAULT_KINDS]
        rows += [
            f"| changes lost | {len(self.lost)} |",
            f"| duplicate records in any system | {len(self.duplicates)} |",
            f"| records not converged | {len(self.unconverged)} |",
            f"| dead letters left | {self.dead_letters} |",
            f"| repairs made by the final reconciliation | {self.reconcile_repairs} |",
            f"| load phase (changes and faults) | {self.load_seconds:.1f} s |",
            f"| time to converge after the last fault | {self.converge_seconds:.1f} s |",
        ]
        return "\n".join(rows)


@dataclass
class Person:
    email: str
    gid: str | None = None  # the shop's customer id
    first_name: str = ""
    side: str = "shop"  # who edits this person after creating: "shop" or "crm"


class Storm:
    def __init__(self, workdir: Path, config: StormConfig) -> None:
        self.dir = workdir
        self.cfg = config
        self.rnd = random.Random(config.seed)
        self.report = Report()
        self.people: list[Person] = []
        self.workers: list[WorkerProcess] = []
        self._stop = threading.Event()

    # --- set-up ----------------------------------------------------------------------------------

    def run(self) -> Report:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (see .ci/run)")
        with SalesforceEmulator(daily_limit=10**7) as sf, ShopifyEmulator(restore_rate=100_000.0) as shop:
            self.sf, self.shop = sf, shop
            self.redis = RedisServer(binary, self.dir)
            spec = {
                "store": f"sqlite:///{self.dir / 'state.db'}",
                "crm": {
                    "login_url": sf.base_url,
                    "client_id": sf.client_id,
                    "client_secret": sf.client_secret,
                    "ca_bundle": sf.ca_bundle,
                    "read_lag_seconds": 1,
                    "timeout": self.cfg.timeout,
                    "pause_seconds": 1,
                },
                "shop": {**shop.settings(), "timeout": self.cfg.timeout, "max_wait": 5},
            }
            self.runtime = factory.build(spec)
            broker = make_broker(self.redis.url, heartbeat_timeout_ms=2000, maintenance_chance=200_000)
            self.actors: Actors = declare(broker)
            self.env = {
                **os.environ,
                "SYNCHUB_RUNTIME": "tests.reliability.factory:runtime",
                factory.ENV: json.dumps(spec),
                "SYNCHUB_BROKER_URL": self.redis.url,
                "SYNCHUB_HEARTBEAT_TIMEOUT_MS": "2000",
                "SYNCHUB_MAINTENANCE_CHANCE": "200000",
                "SYNCHUB_LOG_LEVEL": "WARNING",
            }
            web = ServerThread(web_app(self.runtime, self.actors)).start()
            subscriber = ShopifyConnector("shop", shop.settings())
            subscriber.subscribe(f"{web.url}/webhooks/shop", ["customers/create", "customers/update"])
            subscriber.close()
            for _ in range(self.cfg.workers):
                self._start_worker()
            ticker = threading.Thread(target=self._tick, name="storm-scheduler", daemon=True)
            ticker.start()
            try:
                started = time.monotonic()
                self._load()
                self.report.load_seconds = time.monotonic() - started
                last_fault = time.monotonic()
                self._heal()
                self._converge()
                self.report.converge_seconds = time.monotonic() - last_fault
                self._verify()
            finally:
                self._stop.set()
                ticker.join(5)
                web.stop()
                for w in self.workers:
                    w.close()
                broker.close()
                self.runtime.close()
                self.redis.kill()
        return self.report

    def _start_worker(self) -> None:
        log = self.dir / f"worker{len(self.workers)}.log"
        self.workers.append(WorkerProcess(self.env, log, self.cfg.threads))

    def _send(self, fn: Any, *args: Any) -> None:
        for _ in range(100):  # Redis may be restarting
            try:
                fn(*args)
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("Redis unreachable")

    def _tick(self) -> None:
        """What the scheduler does: polls, and the sweep that re-sends what the store says is pending."""
        while not self._stop.wait(0.5):
            try:
                for system in ("crm", "shop"):
                    self.actors.poll.send(system, "customer")
                self.actors.sweep.send()
            except redis.ConnectionError:
                continue

    # --- the load and the faults -----------------------------------------------------------------

    def _load(self) -> None:
        n = self.cfg.changes
        creates = max(n // 5, 1)
        kinds = list(FAULT_KINDS)
        every = max(n // (self.cfg.min_faults * len(kinds)), 1)
        done = 0
        while done < n or min(self.report.faults[k] for k in kinds) < self.cfg.min_faults:
            if done < n:
                self._change(done, creates)
                done += 1
            if done % every == 0 or done >= n:
                behind = [k for k in kinds if self.report.faults[k] < self.cfg.min_faults]
                self._fault(self.rnd.choice(behind or kinds))
            if done % 50 == 0:
                time.sleep(0.05)  # a realistic pace: let webhooks and workers breathe
        self.shop.latency = 0.0
        self.sf.faults.latency = 0.0
        self.shop.duplicate_webhooks = False

    def _change(self, i: int, creates: int) -> None:
        if i < creates or not self.people:
            p = Person(f"storm{i}@example.pl", side="crm" if i % 3 == 0 else "shop")
            p.first_name = f"Nowa{i}"
            p.gid = self.shop.add_customer(email=p.email, firstName=p.first_name, lastName=f"Burza{i}")
            self.people.append(p)
            self.report.by_source["shop creates"] += 1
        else:
            p = self.rnd.choice(self.people)
            contact = self._contact(p.email) if p.side == "crm" else None
            if p.side == "crm" and contact is not None:
                p.first_name = f"Crm{i}"
                self.sf.org.update("Contact", contact, {"FirstName": p.first_name})
                self.report.by_source["CRM edits"] += 1
            else:
                if p.side == "crm":  # not in the CRM yet: this one is edited in the shop from now on
                    p.side = "shop"
                p.first_name = f"Shop{i}"
                assert p.gid is not None
                self.shop.edit_customer(p.gid, firstName=p.first_name)
                self.report.by_source["shop edits"] += 1
        self.report.changes += 1

    def _contact(self, email: str) -> str | None:
        with self.sf.org.lock:
            for rid, r in self.sf.org.table("Contact").items():
                if not r["IsDeleted"] and str(r.get("Email") or "").lower() == email:
                    return rid
        return None

    def _fault(self, kind: str) -> None:
        target_sf = self.rnd.random() < 0.5
        if kind == "worker SIGKILL":
            victim = self.rnd.randrange(len(self.workers))
            self.workers[victim].kill9()
            self.workers[victim].close()
            self.workers[victim] = WorkerProcess(self.env, self.dir / f"worker{victim}-{time.time_ns()}.log")
        elif kind == "Redis restart (data lost)":
            self.redis.restart()
        elif kind in ("HTTP 500", "HTTP 503"):
            status = int(kind.split()[1])
            if target_sf:
                code = "UNKNOWN_EXCEPTION" if status == 500 else "SERVER_UNAVAILABLE"
                self.sf.faults.fail_next(1, status, code)
            else:
                self.shop.fail_next(1, status)
        elif kind == "HTTP 429":
            self.shop.fail_next(1, 429, retry_after=0.5)  # Salesforce signals limits otherwise (403)
        elif kind == "timeout (late answer)":
            late = self.cfg.timeout + 0.5
            if target_sf:
                self.sf.faults.stall_next(1, late)
            else:
                self.shop.stall_next(1, late)
        elif kind == "latency jitter":
            self.shop.latency = self.rnd.uniform(0.0, 0.05)
            self.sf.faults.latency = self.rnd.uniform(0.0, 0.05)
        elif kind == "webhook duplicated":
            self.shop.duplicate_webhooks = True
            self._change_now()
            self.shop.duplicate_webhooks = False
        elif kind == "webhooks reordered":
            self.shop.pause_webhooks()
            for _ in range(3):
                self._change_now()
            self.shop.release_webhooks(reverse=True)
        self.report.faults[kind] += 1

    def _change_now(self) -> None:
        """A shop edit made inside a fault's window (it counts as a change like any other)."""
        shop_side = [p for p in self.people if p.side == "shop" and p.gid]
        if not shop_side:
            return
        p = self.rnd.choice(shop_side)
        p.first_name = f"Shop{self.report.changes}x"
        assert p.gid is not None
        self.shop.edit_customer(p.gid, firstName=p.first_name)
        self.report.by_source["shop edits"] += 1
        self.report.changes += 1

    # --- afterwards ------------------------------------------------------------------------------

    def _counts(self) -> dict[str, int]:
        with self.runtime.pipeline.store.begin() as conn:
            out = {
                f"outbox.{s}": int(c)
                for s, c in conn.execute(select(outbox.c.status, func.count()).group_by(outbox.c.status))
            }
            out |= {
                f"inbox.{s}": int(c)
                for s, c in conn.execute(select(inbox.c.status, func.count()).group_by(inbox.c.status))
            }
        return out

    def _quiet(self) -> bool:
        c = self._counts()
        return not any(c.get(k) for k in ("inbox.pending", "inbox.processing", "outbox.pending", "outbox.inflight"))

    def _wait_quiet(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            self.shop.wait_webhooks(timeout=10)
            streak = streak + 1 if self._quiet() else 0
            if streak >= 4:  # two seconds quiet: polls found nothing new either
                return
            time.sleep(0.5)
        raise AssertionError(f"the storm did not settle: {self._counts()}\n{self._logs()}")

    def _logs(self) -> str:
        return "\n".join(w.log.read_text(errors="replace")[-1500:] for w in self.workers)

    def _heal(self) -> None:
        self.shop.wait_webhooks(timeout=30)
        self._wait_quiet(self.cfg.settle_timeout)

    def _converge(self) -> None:
        """The reconciler compares each system with the golden records and repairs what drifted."""
        repairs = 0
        for system in ("shop", "crm"):
            r = reconcile(self.runtime.pipeline, system, "customer")
            repairs += r.new + r.drifted + r.behind + r.missing
        self.report.reconcile_repairs = repairs
        self._wait_quiet(self.cfg.settle_timeout)

    def _verify(self) -> None:
        contacts: dict[str, list[dict[str, Any]]] = {}
        with self.sf.org.lock:
            for r in self.sf.org.table("Contact").values():
                if not r["IsDeleted"]:
                    contacts.setdefault(str(r.get("Email") or "").lower(), []).append(r)
        customers: dict[str, list[dict[str, Any]]] = {}
        with self.shop.lock:
            for c in self.shop.customers.values():
                email = ((c.get("defaultEmailAddress") or {}).get("emailAddress") or "").lower()
                customers.setdefault(email, []).append(c)
        with self.runtime.pipeline.store.begin() as conn:
            goldens: dict[str, list[dict[str, Any]]] = {}
            for data in conn.execute(
                select(golden.c.data).where(golden.c.entity == "customer", golden.c.state == "active")
            ):
                for email in data[0].get("emails") or []:
                    goldens.setdefault(str(email).lower(), []).append(data[0])
            self.report.dead_letters = int(
                conn.execute(
                    select(func.count()).select_from(dead_letters).where(dead_letters.c.status == "open")
                ).scalar_one()
            )
        for system, table in (("crm", contacts), ("shop", customers), ("hub", goldens)):
            self.report.duplicates += [
                f"{system}: {email} ×{len(rows)}" for email, rows in table.items() if len(rows) > 1
            ]
        for p in self.people:
            hub = goldens.get(p.email, [{}])[0]
            if hub.get("first_name") != p.first_name:
                self.report.lost.append(f"{p.email}: hub has {hub.get('first_name')!r}, last change {p.first_name!r}")
            crm = contacts.get(p.email, [{}])[0].get("FirstName")
            shop = customers.get(p.email, [{}])[0].get("firstName")
            if not (crm == shop == hub.get("first_name")):
                self.report.unconverged.append(f"{p.email}: hub {hub.get('first_name')!r}, crm {crm!r}, shop {shop!r}")
