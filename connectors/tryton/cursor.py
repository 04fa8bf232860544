"""The incremental-read cursor for one Tryton model: nothing skipped, nothing delivered twice.

Why not simply ``write_date > last``: Tryton stamps ``create_date``/``write_date`` with the time its
*transaction started* (naive UTC), and a transaction may commit after a later one has already been
read. So each sweep asks for everything stamped at or after ``since`` = (highest stamp seen) minus an
**overlap window**, pages through it **by id** (a stable order: rows sharing one timestamp cannot
be skipped between pages), and drops the rows it already delivered with the same stamp (``seen``,
kept for the rows inside the window). A row is new when its id is unseen or its stamp moved.

The stamp of a row is ``write_date`` or, when empty (Tryton leaves it empty on create in some
versions), ``create_date``: the domain asks for either being at or after ``since``.

The state is a small JSON object; its size is bounded by the rows changed within the window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any


def stamp_of(row: dict[str, Any]) -> dt.datetime | None:
    """The row's last change: write_date, else create_date (both naive UTC datetimes)."""
    candidates = [v for v in (row.get("write_date"), row.get("create_date")) if isinstance(v, dt.datetime)]
    return max(candidates) if candidates else None


@dataclass
class ModelCursor:
    """Where the incremental read of one model stands."""

    since: dt.datetime | None = None
    after_id: int = 0
    high: dt.datetime | None = None
    seen: dict[int, dt.datetime] = field(default_factory=dict)
    swept: bool = False  # one whole sweep done: every row there was has been delivered once

    def domain(self, extra: list[Any] | None = None) -> list[Any]:
        """The search domain of the next page, as data (a JSON list), never as text."""
        clauses: list[Any] = list(extra or [])
        if self.since is not None:
            clauses.append(["OR", ["write_date", ">=", self.since], ["create_date", ">=", self.since]])
        clauses.append(["id", ">", self.after_id])
        return clauses

    def take(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows of a page not delivered before; remembers them. ``rows`` are in id order."""
        fresh = []
        for row in rows:
            rid = int(row["id"])
            stamp = stamp_of(row)
            if stamp is not None and self.seen.get(rid) == stamp:
                continue
            fresh.append(row)
            if stamp is not None:
                self.seen[rid] = stamp
                if self.high is None or stamp > self.high:
                    self.high = stamp
        if rows:
            self.after_id = int(rows[-1]["id"])
        return fresh

    def end_sweep(self, overlap: dt.timedelta) -> None:
        """The last page was short: the next sweep starts again from the overlap window."""
        self.after_id = 0
        self.swept = True
        if self.high is not None:
            self.since = self.high - overlap
            since = self.since
            self.seen = {rid: s for rid, s in self.seen.items() if s >= since}

    def dump(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "after": self.after_id,
            "high": self.high.isoformat() if self.high else None,
            "seen": {str(k): v.isoformat() for k, v in self.seen.items()},
            "swept": self.swept,
        }

    @classmethod
    def load(cls, data: dict[str, Any] | None) -> ModelCursor:
        if not data:
            return cls()
        return cls(
            since=dt.datetime.fromisoformat(data["since"]) if data.get("since") else None,
            after_id=int(data.get("after") or 0),
            high=dt.datetime.fromisoformat(data["high"]) if data.get("high") else None,
            seen={int(k): dt.datetime.fromisoformat(v) for k, v in (data.get("seen") or {}).items()},
            swept=bool(data.get("swept")),
        )
