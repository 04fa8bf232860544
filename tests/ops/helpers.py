"""A deployment for the operations tests: a CRM, a shop that sends signed webhooks, and a POS —
real memory connectors on a real store, with the real clock (the dashboard shows real times).

``SignedShop`` is the shop's connector: a memory system whose webhooks carry an HMAC-SHA256 of the
body in ``X-Signature`` (checked in constant time), like Shopify's ``X-Shopify-Hmac-Sha256``; its
writes refuse records on a blocked e-mail domain with a message that echoes the request URL with
its token — the kind of careless vendor message a log or a page must still not leak.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from pydantic import SecretStr
from sqlalchemy import select

from connectors.memory import MemoryConnector
from core.connector import InboundEvent, WebhookRejected, WriteRequest, WriteResult, secret
from core.errors import RecordRejected
from core.store.db import Store
from core.store.schema import golden
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from tests.sync.helpers import MAPPINGS as SYNC_MAPPINGS

MAPPINGS = Path(__file__).resolve().parent / "mappings"
WEBHOOK_SECRET = "whsec-9f8e7d6c5b4a39281706"
API_TOKEN = "shpat-TOPSECRET-0123456789abcdef"
BLOCKED_DOMAIN = "blocked.example"


class SignedShop(MemoryConnector):
    kind: ClassVar[str] = "signed_memory"

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        key = secret(self.settings, "webhook_secret") or ""
        expected = hmac.new(key.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("x-signature", ""), expected):
            raise WebhookRejected("signature mismatch", status=401)
        try:
            data = json.loads(body)
            return [
                InboundEvent(str(data["event_id"]), "customer", data.get("topic", "customers/update"), data["customer"])
            ]
        except (ValueError, KeyError, TypeError):
            raise WebhookRejected("not a customer webhook", status=400) from None

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        results = super().write(entity, batch)
        token = secret(self.settings, "token")
        out = []
        for req, res in zip(batch, results, strict=True):
            if str(req.payload.get("email", "")).endswith("@" + BLOCKED_DOMAIN):
                out.append(
                    WriteResult(
                        error=RecordRejected(
                            f"422 from https://shop.example/admin/customers.json?access_token={token}: "
                            "email domain is blocked",
                            code="BLOCKED",
                        )
                    )
                )
            else:
                out.append(res)
        return out


def sign(body: bytes, key: str = WEBHOOK_SECRET) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def webhook_body(event_id: str, customer: dict[str, Any]) -> bytes:
    return json.dumps({"event_id": event_id, "topic": "customers/update", "customer": customer}).encode()


@dataclass
class OpsDeployment:
    pipeline: Pipeline
    crm: MemoryConnector
    shop: SignedShop
    pos: MemoryConnector

    def golden(self, cid: str) -> dict[str, Any]:
        with self.pipeline.store.begin() as conn:
            return dict(conn.execute(select(golden.c.data).where(golden.c.id == cid)).scalar_one())


def ops_deployment(store: Store) -> OpsDeployment:
    crm = MemoryConnector("crm", {"link_template": "https://crm.example/lightning/r/Contact/{native_id}/view"})
    shop = SignedShop("shop", {"token": SecretStr(API_TOKEN), "webhook_secret": SecretStr(WEBHOOK_SECRET)})
    pos = MemoryConnector("pos")
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "both"}, crm),
        spokes={
            "shop": System("shop", "shopify", load_mapping(MAPPINGS / "shop.yaml"), {"customer": "both"}, shop),
            "pos": System("pos", "pos", load_mapping(SYNC_MAPPINGS / "pos.yaml"), {"customer": "in"}, pos),
        },
    )
    return OpsDeployment(Pipeline(store, systems), crm, shop, pos)
