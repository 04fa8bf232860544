"""Prometheus metrics, computed from the store at scrape time.

A custom collector on its own ``CollectorRegistry`` queries the store on every scrape, so the
figures are true across processes: the API process reports what N worker processes did, and a
restart resets nothing. Names follow Prometheus conventions (``_total`` for counters, base units):

==========================================================  =========================================
``synchub_changes_total{system,entity,direction,outcome}``  in/applied: changes the hub took from a
                                                            system (distinct trace ids in the field
                                                            history); in/dead and out/dead: dead
                                                            letters; out/written: writes done
``synchub_sync_lag_seconds{system,entity}``                 age of the oldest change waiting for the
                                                            system (outbox) or from it (inbox)
``synchub_outbox_pending{system,entity}``                   writes waiting (pending, held, in flight)
``synchub_inbox_pending{system,entity}``                    webhook events waiting to be ingested
``synchub_dead_letters{system,entity,stage}``               open dead letters
``synchub_conflicts_open``                                  conflicts parked for a person
``synchub_api_calls_total{system}``                         API calls made by this process's
                                                            connectors (``connector.calls``)
``synchub_api_quota_used_ratio{system}``                    used / limit of the system's API budget,
                                                            when its connector exposes ``api_usage``
==========================================================  =========================================
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from core.store.schema import conflicts, dead_letters, field_history, outbox
from core.sync.operations import api_usage, inbox_waiting
from core.sync.pipeline import Pipeline

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class StoreCollector(Collector):
    """Every synchub metric, read from the store (and the connectors' call counters) per scrape."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def collect(self) -> Iterator[Metric]:
        now = self.pipeline.clock()
        changes = CounterMetricFamily(
            "synchub_changes",
            "Changes by system, entity, direction (in: to the hub, out: to the system) and outcome",
            labels=["system", "entity", "direction", "outcome"],
        )
        lag = GaugeMetricFamily(
            "synchub_sync_lag_seconds", "Age of the oldest change still waiting", labels=["system", "entity"]
        )
        pending = GaugeMetricFamily("synchub_outbox_pending", "Writes waiting to be sent", labels=["system", "entity"])
        waiting = GaugeMetricFamily(
            "synchub_inbox_pending", "Inbound events waiting to be ingested", labels=["system", "entity"]
        )
        dead = GaugeMetricFamily("synchub_dead_letters", "Open dead letters", labels=["system", "entity", "stage"])
        parked = GaugeMetricFamily("synchub_conflicts_open", "Conflicts parked for a person")
        oldest: dict[tuple[str, str], datetime] = {}
        with self.pipeline.store.read() as conn:
            for r in conn.execute(
                select(
                    field_history.c.source_system,
                    field_history.c.entity,
                    func.count(func.distinct(field_history.c.trace_id)),
                ).group_by(field_history.c.source_system, field_history.c.entity)
            ):
                changes.add_metric([r[0], r[1], "in", "applied"], float(r[2]))
            for r in conn.execute(
                select(dead_letters.c.system, dead_letters.c.entity, dead_letters.c.stage, func.count()).group_by(
                    dead_letters.c.system, dead_letters.c.entity, dead_letters.c.stage
                )
            ):
                direction = "in" if r[2] == "ingest" else "out"
                changes.add_metric([r[0], r[1], direction, "dead"], float(r[3]))
            for r in conn.execute(
                select(outbox.c.system, outbox.c.entity, func.count())
                .where(outbox.c.status == "done")
                .group_by(outbox.c.system, outbox.c.entity)
            ):
                changes.add_metric([r[0], r[1], "out", "written"], float(r[2]))
            for r in conn.execute(
                select(outbox.c.system, outbox.c.entity, func.count(), func.min(outbox.c.created_at))
                .where(outbox.c.status.in_(("pending", "held", "inflight")))
                .group_by(outbox.c.system, outbox.c.entity)
            ):
                pending.add_metric([r[0], r[1]], float(r[2]))
                oldest[(r[0], r[1])] = r[3]
            for r in conn.execute(
                select(dead_letters.c.system, dead_letters.c.entity, dead_letters.c.stage, func.count())
                .where(dead_letters.c.status == "open")
                .group_by(dead_letters.c.system, dead_letters.c.entity, dead_letters.c.stage)
            ):
                dead.add_metric([r[0], r[1], r[2]], float(r[3]))
            parked.add_metric(
                [],
                float(
                    conn.execute(
                        select(func.count()).select_from(conflicts).where(conflicts.c.status == "open")
                    ).scalar()
                    or 0
                ),
            )
        for key, r in inbox_waiting(self.pipeline.store).items():
            waiting.add_metric(list(key), float(r.n))
            oldest[key] = min(oldest.get(key, r.oldest), r.oldest)
        for system in self.pipeline.systems.all():
            for entity in system.flows:
                key = (system.name, entity)
                at = oldest.get(key)
                lag.add_metric([system.name, entity], max((now - at).total_seconds(), 0.0) if at else 0.0)
        calls = CounterMetricFamily("synchub_api_calls", "API calls made by this process", labels=["system"])
        quota = GaugeMetricFamily(
            "synchub_api_quota_used_ratio", "Share of the system's API budget used", labels=["system"]
        )
        for system in self.pipeline.systems.all():
            if system.connector is None:
                continue
            calls.add_metric([system.name], float(system.connector.calls))
            usage = api_usage(system.connector)
            if usage is not None:
                quota.add_metric([system.name], usage["ratio"])
        yield from (changes, lag, pending, waiting, dead, parked, calls, quota)


def registry_for(pipeline: Pipeline) -> CollectorRegistry:
    """A registry of its own (not the global default), holding the store collector."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(pipeline))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format for ``/metrics``."""
    return generate_latest(registry)
