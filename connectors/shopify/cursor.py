"""The incremental-read cursor: ``updated_at:>=T``, without skipping rows that share a timestamp.

Shopify's ``updated_at`` has whole seconds, so many records can share one. Asking ``>T`` after a
page that ended at T would lose the rest of T's records; asking ``>=T`` re-reads them. So the
cursor keeps T *and* the ids already delivered at exactly T, and drops those on the next read.

A *pass* is one query ``updated_at:>=T`` followed page by page (``after``); while it runs, the
cursor also tracks the newest timestamp seen (``hi``) and the ids at it. When the pass ends, T
moves to ``hi``. This needs no sort order (inventory items have no sort key); with
``sortKey: UPDATED_AT`` records also arrive oldest first, as the connector contract asks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def stamp(value: str | datetime) -> str:
    """A Shopify DateTime in one canonical form (UTC, whole seconds, ``Z``), comparable as text."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Cursor:
    since: str | None = None
    seen: list[str] = field(default_factory=list)
    after: str | None = None
    hi: str | None = None
    hi_seen: list[str] = field(default_factory=list)

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        if not text:
            return cls()
        raw = json.loads(text)
        return cls(raw.get("t"), list(raw.get("ids", [])), raw.get("after"), raw.get("hi"), list(raw.get("hi_ids", [])))

    def encode(self) -> str:
        raw: dict[str, Any] = {"t": self.since, "ids": self.seen}
        if self.after is not None:
            raw.update(after=self.after, hi=self.hi, hi_ids=self.hi_seen)
        return json.dumps(raw, separators=(",", ":"))

    def step(self, nodes: list[tuple[str, str]], has_next: bool, end_cursor: str | None) -> tuple[list[int], Cursor]:
        """Given one page of ``(id, updatedAt)``, the indexes to deliver and the next cursor."""
        if self.after is None:  # a new pass starts from what the last one ended on
            hi, hi_seen = self.since, list(self.seen)
        else:
            hi, hi_seen = self.hi, list(self.hi_seen)
        seen = set(self.seen)
        keep: list[int] = []
        for i, (nid, updated) in enumerate(nodes):
            ts = stamp(updated)
            if ts == self.since and nid in seen:
                continue
            keep.append(i)
            if hi is None or ts > hi:
                hi, hi_seen = ts, [nid]
            elif ts == hi and nid not in hi_seen:
                hi_seen.append(nid)
        if has_next and end_cursor:
            return keep, Cursor(self.since, self.seen, end_cursor, hi, hi_seen)
        return keep, Cursor(hi, hi_seen)
