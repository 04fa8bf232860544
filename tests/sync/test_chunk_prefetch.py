"""A poll reads what a chunk of records needs in one statement per table (SQLite); the outcome must
be exactly what ingesting the same records one by one gives.

The chunks here hold what makes such a read go stale: the same record twice with different values,
two records of one person, records that merely confirm what is stored, edits of records the CRM
holds, and the CRM's echoes of our writes.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from sqlalchemy import select

from core.store.db import Store
from core.store.schema import conflicts, dead_letters, field_history, golden, merge_candidates, outbox, xref
from tests.sync.helpers import Deployment, deployment

CITIES = ["Kraków", "Gdańsk", "Poznań", "Łódź"]


def _chunk(dep: Deployment, system: str, records: list[dict[str, Any]], *, together: bool) -> None:
    """Ingest ``records`` of ``system`` in one transaction, with the chunk's prefetch or without."""
    pipeline = dep.pipeline
    sys_ = pipeline.systems.get(system)
    with pipeline.store.begin() as conn:
        prefetch = pipeline._prefetch(conn, sys_, "customer", records) if together else None
        if together:
            assert prefetch is not None  # SQLite and more than one record: the chunk is read at once
        for rec in records:
            pipeline.ingest(system, "customer", rec, conn=conn, prefetch=prefetch)


def _state(dep: Deployment) -> dict[str, Any]:
    """The store's content with canonical ids replaced by the native ids that name them."""
    with dep.pipeline.store.begin() as conn:
        refs = conn.execute(select(xref.c.canonical_id, xref.c.system, xref.c.native_id)).fetchall()
        names: dict[str, list[str]] = {}
        for r in refs:
            names.setdefault(r.canonical_id, []).append(f"{r.system}:{r.native_id}")
        label = {cid: "|".join(sorted(v)) for cid, v in names.items()}

        def named(cid: str) -> str:
            return label.get(cid, "?")

        goldens = sorted(
            (named(r.id), r.version, repr(sorted(r.data.items())))
            for r in conn.execute(select(golden.c.id, golden.c.version, golden.c.data))
        )
        writes = sorted(
            (named(r.canonical_id), r.system, r.status, repr(sorted(r.data.items())))
            for r in conn.execute(select(outbox.c.canonical_id, outbox.c.system, outbox.c.status, outbox.c.data))
        )
        history = sorted(
            (named(r.canonical_id), r.field, repr(r.value), r.rule, r.source_system)
            for r in conn.execute(
                select(
                    field_history.c.canonical_id,
                    field_history.c.field,
                    field_history.c.value,
                    field_history.c.rule,
                    field_history.c.source_system,
                )
            )
        )
        clashes = sorted(
            (named(r.canonical_id), r.field, r.rule, r.outcome)
            for r in conn.execute(
                select(conflicts.c.canonical_id, conflicts.c.field, conflicts.c.rule, conflicts.c.outcome)
            )
        )
        candidates = len(conn.execute(select(merge_candidates.c.id)).fetchall())
        dead = len(conn.execute(select(dead_letters.c.id)).fetchall())
    return {
        "golden": goldens,
        "outbox": writes,
        "history": history,
        "conflicts": clashes,
        "merge_candidates": candidates,
        "dead_letters": dead,
    }


def _shop_record(i: int, rng: random.Random, version: int) -> dict[str, Any]:
    return {
        "id": f"s{i}",
        "firstName": f"Klient{i}",
        "lastName": "Testowy",
        "email": f"klient{i % 17}@example.pl"
        if i >= 40
        else f"klient{i}@example.pl",  # i ≥ 40: a second record of someone
        "phone": f"+48 6{i:08d}",
        "address": {"city": rng.choice(CITIES)},
        "note": f"v{version}",
        "tags": ["web"],
        "updated_at": f"2026-11-20T09:{version:02d}:{i % 60:02d}+00:00",
    }


def test_a_chunk_read_at_once_ends_exactly_where_one_by_one_ends(tmp_path: Path):
    # Given two identical deployments on SQLite
    a = deployment(Store(f"sqlite:///{tmp_path / 'a.db'}"))
    b = deployment(Store(f"sqlite:///{tmp_path / 'b.db'}"))
    try:
        for round_ in range(1, 5):
            rng = random.Random(round_)
            ids = rng.sample(range(50), 30) + rng.sample(range(50), 8)  # some records twice in a chunk
            shop_chunk = [_shop_record(i, rng, round_ * 2 + n % 2) for n, i in enumerate(ids)]
            for dep, together in ((a, True), (b, False)):
                # When a round's shop chunk (duplicates, people seen twice, confirmations, edits), then the
                # CRM's answer (echoes, every third one edited there) are ingested: in a as chunks, in b
                # one by one
                _chunk(dep, "shop", [dict(r) for r in shop_chunk], together=together)
                dep.pipeline.flush("crm")
                echoes = [dict(rec) for _, rec in sorted(dep.crm.system.live("customer").items())]
                for n, rec in enumerate(echoes):
                    if n % 3 == round_ % 3:
                        rec["city"] = CITIES[(n + round_) % len(CITIES)]
                _chunk(dep, "crm", echoes, together=together)
            # Then both stores hold the same golden records, writes, history, conflicts and candidates
            assert _state(a) == _state(b), f"round {round_}"
        final = _state(a)
        assert final["merge_candidates"] > 0 and final["outbox"] and final["history"]  # the chunks were not trivial
    finally:
        a.pipeline.store.close()
        b.pipeline.store.close()
