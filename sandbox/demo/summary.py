"""The demo's closing summary, counted from the state store — never from the demo's own tally, so
the story it tells is what synchub actually recorded."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from core.store.db import Store
from core.store.schema import conflicts, dead_letters, golden, inbox, outbox, xref


@dataclass
class Summary:
    customers: int = 0
    cross_channel: int = 0
    """Golden customers linked to two or more systems by those systems' own records."""
    customer_links: dict[str, int] = field(default_factory=dict)
    """System → customers it holds a record of."""
    orders_by_channel: dict[str, int] = field(default_factory=dict)
    shipments: int = 0
    shipments_by_status: dict[str, int] = field(default_factory=dict)
    touchpoints_by_channel: dict[str, int] = field(default_factory=dict)
    complaints: int = 0
    returns: int = 0
    conflicts_by_rule: dict[str, int] = field(default_factory=dict)
    dead_letters: dict[str, int] = field(default_factory=dict)
    """Status (open / replayed / discarded) → count."""
    pending_inbox: int = 0
    pending_outbox: int = 0
    changes_in: int = 0
    """Webhooks the systems sent (inbox rows; polled changes are ingested directly, not counted)."""
    writes_done: int = 0
    """Writes made to the systems (outbox rows done)."""
    throttled: dict[str, int] = field(default_factory=dict)
    """System → 429s it answered and the workers waited out. Not in the store (a throttled call is
    retried by the connector after the Retry-After it names): the day counts them on the emulator."""

    @property
    def lost(self) -> int:
        """Changes neither applied nor kept as an open dead letter: must be 0 when the day is over."""
        return self.pending_inbox + self.pending_outbox


def summarise(store: Store, hub: str) -> Summary:
    s = Summary()
    with store.inbox.read() as conn:  # on SQLite a file of its own
        s.changes_in = int(conn.execute(select(func.count()).select_from(inbox)).scalar() or 0)
        s.pending_inbox = int(
            conn.execute(select(func.count()).select_from(inbox).where(inbox.c.status == "pending")).scalar() or 0
        )
    with store.read() as conn:
        s.customers = int(
            conn.execute(
                select(func.count())
                .select_from(golden)
                .where(golden.c.entity == "customer", golden.c.state == "active")
            ).scalar()
            or 0
        )
        links = conn.execute(
            select(xref.c.canonical_id, xref.c.system)
            .join(golden, golden.c.id == xref.c.canonical_id)
            .where(xref.c.entity == "customer", golden.c.state == "active")
        ).fetchall()
        per_customer: dict[str, set[str]] = {}
        for cid, system in links:
            per_customer.setdefault(cid, set()).add(system)
        # joined across channels: linked to two or more systems by *their own* records, i.e. links
        # that synchub did not create by writing there (no write to that system was done before the link)
        linked_at = {
            (cid, system): at
            for cid, system, at in conn.execute(
                select(xref.c.canonical_id, xref.c.system, xref.c.created_at).where(xref.c.entity == "customer")
            )
        }
        written_at: dict[tuple[str, str], Any] = {}
        for cid, system, at in conn.execute(
            select(outbox.c.canonical_id, outbox.c.system, func.min(outbox.c.updated_at))
            .where(outbox.c.entity == "customer", outbox.c.status == "done")
            .group_by(outbox.c.canonical_id, outbox.c.system)
        ):
            written_at[(cid, system)] = at
        own: dict[str, int] = {}
        for (cid, system), at in linked_at.items():
            first_write = written_at.get((cid, system))
            if first_write is None or first_write > at:
                own[cid] = own.get(cid, 0) + 1
        s.cross_channel = sum(1 for cid, n in own.items() if n >= 2 and cid in per_customer)
        s.customer_links = dict(Counter(system for systems in per_customer.values() for system in systems))
        s.orders_by_channel = _count_by(conn, "order", "channel")
        s.shipments_by_status = _count_by(conn, "shipment", "status")
        s.shipments = sum(s.shipments_by_status.values())
        s.touchpoints_by_channel = _count_by(conn, "touchpoint", "channel")
        s.complaints = sum(_count_by(conn, "complaint", "status").values())
        s.returns = sum(_count_by(conn, "return", "status").values())
        s.conflicts_by_rule = {
            str(rule): int(n)
            for rule, n in conn.execute(select(conflicts.c.rule, func.count()).group_by(conflicts.c.rule)).fetchall()
        }
        s.dead_letters = {
            str(status): int(n)
            for status, n in conn.execute(
                select(dead_letters.c.status, func.count()).group_by(dead_letters.c.status)
            ).fetchall()
        }
        s.writes_done = int(
            conn.execute(select(func.count()).select_from(outbox).where(outbox.c.status == "done")).scalar() or 0
        )
        s.pending_outbox = int(
            conn.execute(
                select(func.count()).select_from(outbox).where(outbox.c.status.in_(("pending", "held", "inflight")))
            ).scalar()
            or 0
        )
    return s


def _count_by(conn: Any, entity: str, key: str) -> dict[str, int]:
    rows = conn.execute(select(golden.c.data).where(golden.c.entity == entity, golden.c.state == "active")).scalars()
    return dict(Counter(str((data or {}).get(key) or "unknown") for data in rows))


def render(summary: Summary, console: Console, *, trace_url: str | None = None, erp: bool = True) -> None:
    """The narrated summary: what happened today, in the terms a retailer uses."""
    table = Table(title="synchub — the day in numbers", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("count")
    links = ", ".join(f"{k} {v}" for k, v in sorted(summary.customer_links.items()))
    table.add_row("customers unified", f"{summary.customers} golden records ({links})")
    table.add_row(
        "cross-channel matches",
        f"{summary.cross_channel} people already known in two or more systems, joined into one record each",
    )
    table.add_row(
        "orders synced, by channel", f"{sum(summary.orders_by_channel.values())} ({_pairs(summary.orders_by_channel)})"
    )
    table.add_row("shipments created", f"{summary.shipments} ({_pairs(summary.shipments_by_status)})")
    table.add_row("touchpoints", _pairs(summary.touchpoints_by_channel) or "none")
    table.add_row("returns / complaints", f"{summary.returns} / {summary.complaints}")
    conflicts_total = sum(summary.conflicts_by_rule.values())
    table.add_row(
        "conflicts, by rule",
        f"{conflicts_total} recorded with both values ({_pairs(summary.conflicts_by_rule)})"
        if conflicts_total
        else "none",
    )
    letters = summary.dead_letters
    created = sum(letters.values())
    table.add_row(
        "dead letters",
        f"{created} created, {letters.get('replayed', 0)} replayed, {letters.get('open', 0)} open"
        + (f", {letters['discarded']} discarded" if letters.get("discarded") else "")
        if created
        else "none",
    )
    if summary.throttled:
        table.add_row(
            "429s waited out",
            ", ".join(
                f"{system} answered 429 {n} times; every call went through" for system, n in summary.throttled.items()
            ),
        )
    lost = summary.lost
    handled = f"{summary.changes_in} webhooks in, {summary.writes_done} writes out"
    table.add_row(
        "nothing lost",
        f"[green]0 pending[/]: {handled}, each applied or kept as a dead letter"
        if lost == 0
        else f"[red]{lost} pending[/] (work left undone): {handled}",
    )
    if not erp:
        table.add_row("ERP / till", "[yellow]left out[/]: Tryton was not running (see above)")
    console.print(table)
    if trace_url:
        console.print(f"One customer's whole story: [link={trace_url}]{trace_url}[/link]")


def _pairs(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
