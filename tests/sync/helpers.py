"""A small deployment for the sync-core tests: a CRM hub, a shop, a store POS and an ERP, each a
real memory connector with its own mapping file under tests/sync/mappings/."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from connectors.memory import MemoryConnector
from core.store.db import Store
from core.store.schema import golden, xref
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping

MAPPINGS = Path(__file__).resolve().parent / "mappings"


class Clock:
    """A controllable UTC clock: tests step past retry back-offs without sleeping."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Deployment:
    pipeline: Pipeline
    crm: MemoryConnector
    shop: MemoryConnector
    pos: MemoryConnector
    erp: MemoryConnector
    clock: Clock

    def golden_count(self, entity: str = "customer") -> int:
        with self.pipeline.store.begin() as conn:
            return int(conn.execute(select(func.count()).select_from(golden).where(golden.c.entity == entity)).scalar())

    def golden(self, cid: str) -> dict[str, Any]:
        with self.pipeline.store.begin() as conn:
            return dict(conn.execute(select(golden.c.data).where(golden.c.id == cid)).scalar_one())

    def only_cid(self, entity: str = "customer") -> str:
        with self.pipeline.store.begin() as conn:
            return str(conn.execute(select(golden.c.id).where(golden.c.entity == entity)).scalar_one())

    def xrefs_by_native(self, system: str, native_id: str) -> str:
        """The canonical id a system's native id is linked to."""
        with self.pipeline.store.begin() as conn:
            return str(
                conn.execute(
                    select(xref.c.canonical_id).where(xref.c.system == system, xref.c.native_id == native_id)
                ).scalar_one()
            )

    def xrefs(self, cid: str) -> dict[str, str]:
        with self.pipeline.store.begin() as conn:
            rows = conn.execute(select(xref.c.system, xref.c.native_id).where(xref.c.canonical_id == cid)).fetchall()
        return {r.system: r.native_id for r in rows}


def deployment(store: Store) -> Deployment:
    crm, shop, pos, erp = (MemoryConnector(n) for n in ("crm", "shop", "pos", "erp"))
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "both"}, crm),
        spokes={
            "shop": System(
                "shop",
                "shopify",
                load_mapping(MAPPINGS / "shop.yaml"),
                {"customer": "both", "stock_level": "out"},
                shop,
            ),
            "pos": System("pos", "pos", load_mapping(MAPPINGS / "pos.yaml"), {"customer": "in"}, pos),
            "erp": System("erp", "tryton", load_mapping(MAPPINGS / "erp.yaml"), {"stock_level": "in"}, erp),
        },
    )
    clock = Clock()
    return Deployment(Pipeline(store, systems, clock=clock), crm, shop, pos, erp, clock)
