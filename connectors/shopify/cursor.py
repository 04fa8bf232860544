"""The incremental-read cursor: ``updated_at:>=T``, without skipping rows that share a timestamp.

Shopify's ``updated_at`` has whole seconds, so many records can share one. Asking ``>T`` after a
page that ended at T would lose the rest of T's records; asking ``>=T`` re-reads them. So the
cursor keeps T *and* the ids already delivered at exactly T, and drops those on the next read.

A *pass* is one query ``updated_at:>=T`` followed page by page (``after``); while it runs, the
cursor also tracks the newest timestamp seen (``hi``) and the ids at it. When the pass ends, T
moves to ``hi``. This needs no sort order (inventory items have no sort key); with
``sortKey: UPDATED_AT`` records also arrive oldest first, as the connector contract asks.

A second that is over is *closed*: when a pass that began (by the shop's clock: the ``Date`` of
its first answer less that call's duration, so a slow answer does not count as a later start)
more than ``settle`` seconds after ``hi`` ends, every record stamped ``hi`` was in it, so the
next pass asks ``updated_at:>hi`` and keeps no ids. Without that, a bulk edit of thousands of
customers in one second was read again, page after page, by every idle poll until the next
change (1,000 customers: 10 calls a poll instead of one, and a 30 KB cursor). The fault storm
(tests/reliability) found the slow answer: with the bare ``Date``, an answer 5 s late closed the
second its query had read while a record was still being saved in it.
``settle`` (5 s) covers the time the shop takes to make a saved record searchable; until a second
is closed, a record saved late in it is still read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson


def stamp(value: str | datetime) -> str:
    """A Shopify DateTime in one canonical form (UTC, whole seconds, ``Z``), comparable as text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


SETTLE_SECONDS = 5.0
"""Default of the ``settle`` setting: how long after a second the shop is taken to have made every
record saved in it searchable."""


@dataclass
class Cursor:
    since: str | None = None
    seen: list[str] = field(default_factory=list)
    after: str | None = None
    hi: str | None = None
    hi_seen: list[str] = field(default_factory=list)
    closed: bool = False
    """Every record stamped ``since`` has been delivered: the next pass asks for later ones only."""
    started: str | None = None
    """While a pass runs: the shop's time when it began (``GraphQLClient.execute_dated``), or None."""

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        raw = orjson.loads(text)
        return cls(
            raw.get("t"),
            list(raw.get("ids", [])),
            raw.get("after"),
            raw.get("hi"),
            list(raw.get("hi_ids", [])),
            bool(raw.get("closed", False)),
            raw.get("started"),
        )

    def encode(self) -> str:
        raw: dict[str, Any] = {"t": self.since, "ids": self.seen}
        if self.closed:
            raw["closed"] = True
        if self.after is not None:
            raw.update(after=self.after, hi=self.hi, hi_ids=self.hi_seen, started=self.started)
        # orjson: the same compact text; with a bulk import in one second the ids run to thousands
        return orjson.dumps(raw).decode()

    @property
    def comparison(self) -> str:
        """The pass's ``updated_at`` comparison: ``>`` after a closed second, else ``>=``."""
        return ">" if self.closed else ">="

    def step(
        self,
        nodes: list[tuple[str, str]],
        has_next: bool,
        end_cursor: str | None,
        answered_at: datetime | None = None,
        settle: float = SETTLE_SECONDS,
    ) -> tuple[list[int], Cursor]:
        """Given one page of ``(id, updatedAt)``, the indexes to deliver and the next cursor.

        ``answered_at``: the shop's time no later than when it ran this page's query (None: unknown,
        and then no second is ever closed)."""
        if self.after is None:  # a new pass starts from what the last one ended on
            hi, hi_seen = self.since, list(self.seen)
            started = stamp(answered_at) if answered_at is not None else None
        else:
            hi, hi_seen = self.hi, list(self.hi_seen)
            started = self.started
        seen = set(self.seen)
        at_hi = set(hi_seen)  # a bulk import shares one second: membership in a list would be quadratic
        keep: list[int] = []
        for i, (nid, updated) in enumerate(nodes):
            ts = stamp(updated)
            if ts == self.since and nid in seen:
                continue
            keep.append(i)
            if hi is None or ts > hi:
                hi, hi_seen, at_hi = ts, [nid], {nid}
            elif ts == hi and nid not in at_hi:
                hi_seen.append(nid)
                at_hi.add(nid)
        if has_next and end_cursor:
            return keep, Cursor(self.since, self.seen, end_cursor, hi, hi_seen, self.closed, started)
        if hi is not None and started is not None and hi < stamp(_parse(started) - timedelta(seconds=settle)):
            return keep, Cursor(hi, [], closed=True)
        return keep, Cursor(hi, hi_seen, closed=self.closed and hi == self.since)


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
