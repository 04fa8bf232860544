"""A deployment for the InPost flow: the CRM hub, a shop spoke and the InPost spoke over ShipX.

The shop is built in one function, ``shop_system``: a memory connector with mappings/shopify.yaml
(the shop's ``shipment`` is a Shopify Fulfillment: tracking number, company and URL on the order);
test_flow_shopify.py runs the same flow with the Shopify emulator and connector instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from connectors.inpost import InPostConnector
from connectors.memory import MemoryConnector
from core.connector import ChangePage, NativeRecord
from core.store.db import Store
from core.store.schema import dead_letters, golden, xref
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.inpost import ShipXEmulator

ROOT = Path(__file__).resolve().parents[2]
MAPPINGS = ROOT / "mappings"
HERE = Path(__file__).resolve().parent
TOKEN = "shipx-e2e-token"
ORGANIZATION = 41


class CrmMemory(MemoryConnector):
    """The memory connector holding the hub's records as Salesforce returns them: the record id under
    ``Id`` and the modification time under ``SystemModstamp`` (what mappings/salesforce.yaml reads)."""

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        page = super().read_changes(entity, cursor, limit)
        return ChangePage([self._as_salesforce(r) for r in page.records], page.cursor, page.more)

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        return [self._as_salesforce(r) for r in super().fetch(entity, native_ids)]

    @staticmethod
    def _as_salesforce(record: NativeRecord) -> NativeRecord:
        data = {**record.data, "Id": record.native_id, "SystemModstamp": record.data.get("updated_at")}
        return NativeRecord(record.native_id, data, record.deleted, record.updated_at)


def shop_system(workdir: Path) -> tuple[System, MemoryConnector]:
    """The shop spoke: customers and orders in, fulfilments (shipments) out."""
    connector = MemoryConnector("shop")
    flows: dict[str, Any] = {"customer": "in", "order": "in", "shipment": "out"}
    return System("shop", "shopify", load_mapping(MAPPINGS / "shopify.yaml"), flows, connector), connector


def inpost_settings(shipx: ShipXEmulator, **extra: Any) -> dict[str, Any]:
    return {"base_url": shipx.url, "organization_id": ORGANIZATION, "token": TOKEN, **extra}


@dataclass
class InPostDeployment:
    pipeline: Pipeline
    crm: CrmMemory
    shop: MemoryConnector
    inpost: InPostConnector
    shipx: ShipXEmulator

    def place_locker_order(self, point: str = "KRA010") -> str:
        """A shop customer (synced first, as a returning customer is) places an order for pickup at locker
        ``point``; returns the shop's order id."""
        customer = json.loads((MAPPINGS / "samples" / "shopify-customer.json").read_text(encoding="utf-8"))
        self.shop.system.put("customer", customer, native_id=customer["id"])
        self.pipeline.drain()
        order = json.loads((MAPPINGS / "samples" / "shopify-order.json").read_text(encoding="utf-8"))
        order["customer"] = {"id": customer["id"]}
        order["customAttributes"] = [{"key": "inpost_point", "value": point}]
        return self.shop.system.put("order", order, native_id=order["id"])

    def canonical_id(self, entity: str, system: str, native_id: str) -> str:
        with self.pipeline.store.begin() as conn:
            return str(
                conn.execute(
                    select(xref.c.canonical_id).where(
                        xref.c.entity == entity, xref.c.system == system, xref.c.native_id == native_id
                    )
                ).scalar_one()
            )

    def native_id(self, entity: str, system: str, cid: str) -> str | None:
        with self.pipeline.store.begin() as conn:
            found = conn.execute(
                select(xref.c.native_id).where(
                    xref.c.entity == entity, xref.c.system == system, xref.c.canonical_id == cid
                )
            ).scalar()
        return None if found is None else str(found)

    def golden(self, cid: str) -> dict[str, Any]:
        with self.pipeline.store.begin() as conn:
            return dict(conn.execute(select(golden.c.data).where(golden.c.id == cid)).scalar_one())

    def goldens(self, entity: str) -> list[tuple[str, dict[str, Any]]]:
        with self.pipeline.store.begin() as conn:
            rows = conn.execute(select(golden.c.id, golden.c.data).where(golden.c.entity == entity)).fetchall()
        return [(str(r.id), dict(r.data)) for r in rows]

    def dead_letters(self, system: str) -> list[Any]:
        with self.pipeline.store.begin() as conn:
            return list(conn.execute(select(dead_letters).where(dead_letters.c.system == system)).fetchall())


def deployment(store: Store, shipx: ShipXEmulator, workdir: Path, **inpost_extra: Any) -> InPostDeployment:
    crm = CrmMemory("crm")
    shop, shop_connector = shop_system(workdir)
    inpost = InPostConnector("inpost", inpost_settings(shipx, **inpost_extra))
    systems = Systems(
        hub=System(
            "crm",
            "salesforce",
            load_mapping(MAPPINGS / "salesforce.yaml"),
            {"customer": "both", "order": "both", "shipment": "both", "touchpoint": "both"},
            crm,
        ),
        spokes={
            "shop": shop,
            "inpost": System(
                "inpost",
                "inpost",
                load_mapping(MAPPINGS / "inpost.yaml"),
                {"order": "out", "shipment": "in", "touchpoint": "in"},
                inpost,
            ),
        },
    )
    return InPostDeployment(Pipeline(store, systems), crm, shop_connector, inpost, shipx)
