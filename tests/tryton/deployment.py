"""A deployment for the Tryton contract tests: the CRM hub (a memory connector speaking
mappings/salesforce.yaml), Tryton as the ERP/POS spoke, and a shop (memory, mappings/shopify.yaml)
that receives stock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select

from connectors.memory import MemoryConnector
from connectors.tryton import TrytonConnector
from core.connector import ChangePage, NativeRecord
from core.store.db import Store
from core.store.schema import dead_letters, golden, xref
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.tryton.server import TrytonServer
from tests.sync.helpers import Clock

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


class SalesforceLikeMemory(MemoryConnector):
    """The memory hub, answering as Salesforce does: the record id under ``Id`` and its last change
    under ``SystemModstamp`` (what mappings/salesforce.yaml reads; the memory system keeps them under
    ``id`` and ``updated_at``)."""

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        page = super().read_changes(entity, cursor, limit)
        records = [
            NativeRecord(
                r.native_id,
                {**r.data, "Id": r.native_id, "SystemModstamp": r.data.get("updated_at")},
                r.deleted,
                r.updated_at,
            )
            for r in page.records
        ]
        return ChangePage(records, page.cursor, page.more)


@dataclass
class TrytonDeployment:
    pipeline: Pipeline
    crm: MemoryConnector
    shop: MemoryConnector
    erp: TrytonConnector
    clock: Clock

    def drain(self) -> int:
        return self.pipeline.drain()

    def dead(self) -> list[tuple[str, str, str]]:
        """Dead letters as (system, entity, error): a test asserts there are none it did not expect."""
        with self.pipeline.store.begin() as conn:
            rows = conn.execute(select(dead_letters.c.system, dead_letters.c.entity, dead_letters.c.error)).fetchall()
        return [(r.system, r.entity, r.error) for r in rows]

    def goldens(self, entity: str) -> list[tuple[str, dict[str, Any]]]:
        with self.pipeline.store.begin() as conn:
            rows = conn.execute(select(golden.c.id, golden.c.data).where(golden.c.entity == entity)).fetchall()
        return [(str(r.id), dict(r.data)) for r in rows]

    def customer(self, email: str) -> tuple[str, dict[str, Any]]:
        """The one golden customer with this e-mail (Tryton's own parties, the company's, sync too)."""
        found = [(cid, g) for cid, g in self.goldens("customer") if email in (g.get("emails") or [])]
        assert len(found) == 1, found
        return found[0]

    def native_id(self, entity: str, system: str, cid: str) -> str | None:
        with self.pipeline.store.begin() as conn:
            return conn.execute(
                select(xref.c.native_id).where(
                    xref.c.entity == entity, xref.c.system == system, xref.c.canonical_id == cid
                )
            ).scalar()

    def canonical_id(self, entity: str, system: str, native_id: str) -> str | None:
        with self.pipeline.store.begin() as conn:
            return conn.execute(
                select(xref.c.canonical_id).where(
                    xref.c.entity == entity, xref.c.system == system, xref.c.native_id == native_id
                )
            ).scalar()


def tryton_deployment(
    store: Store, server: TrytonServer, *, transport: httpx.BaseTransport | None = None
) -> TrytonDeployment:
    crm, shop = SalesforceLikeMemory("crm"), MemoryConnector("shop")
    erp = TrytonConnector("erp", server.settings(), transport=transport)
    systems = Systems(
        hub=System(
            "crm",
            "salesforce",
            load_mapping(MAPPINGS / "salesforce.yaml"),
            {"customer": "both", "complaint": "both", "touchpoint": "both", "product": "both", "order": "both"},
            crm,
        ),
        spokes={
            "erp": System(
                "erp",
                "tryton",
                load_mapping(MAPPINGS / "tryton.yaml"),
                {
                    "customer": "both",
                    "stock_level": "in",
                    "touchpoint": "in",
                    "complaint": "both",
                    "product": "in",
                    "order": "both",
                },
                erp,
            ),
            "shop": System("shop", "shopify", load_mapping(MAPPINGS / "shopify.yaml"), {"stock_level": "both"}, shop),
        },
    )
    clock = Clock()
    clock.now = datetime.now(UTC)  # Tryton and the memory systems stamp with the real clock
    return TrytonDeployment(Pipeline(store, systems, clock=clock), crm, shop, erp, clock)
