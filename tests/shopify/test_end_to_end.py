"""Shopify as a spoke of a real pipeline: memory CRM hub (mappings/salesforce.yaml), the Shopify
connector against the emulator (mappings/shopify.yaml), webhooks through a real HTTP endpoint."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from connectors.memory import MemoryConnector
from connectors.shopify import ShopifyConnector
from core.connector import ChangePage, NativeRecord, WebhookRejected
from core.store.db import Store
from core.store.schema import golden, inbox
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.shopify.emulator import ShopifyEmulator
from tests.conftest import wait_for

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"


class ContactStore(MemoryConnector):
    """The memory connector speaking Salesforce's record keys (``Id``, ``SystemModstamp``), which is
    what mappings/salesforce.yaml reads; everything else is the memory connector's own behaviour."""

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        page = super().read_changes(entity, cursor, limit)
        records = [
            NativeRecord(
                r.native_id,
                {**r.data, "Id": r.native_id, "SystemModstamp": r.data["updated_at"]},
                r.deleted,
                r.updated_at,
            )
            for r in page.records
        ]
        return ChangePage(records, page.cursor, page.more)


class Endpoint:
    """The webhook endpoint as synchub's web app would be: verify, then land in the inbox."""

    def __init__(self, pipeline: Pipeline, connector: ShopifyConnector) -> None:
        self.answers: list[int] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = 200
                try:
                    for event in connector.parse_webhook(dict(self.headers.items()), body):
                        pipeline.accept("shop", event.entity, event.event_id, event.record, op=event.op)
                except WebhookRejected as exc:
                    status = exc.status
                endpoint.answers.append(status)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/shop"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    pipeline: Pipeline
    crm: ContactStore
    shopify: ShopifyConnector
    shop: ShopifyEmulator
    endpoint: Endpoint

    def count(self, table: Any, *where: Any) -> int:
        with self.pipeline.store.of(table).read() as conn:
            return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())


@pytest.fixture
def world(sqlite_store: Store, shop: ShopifyEmulator) -> Iterator[World]:
    crm = ContactStore("crm")
    shopify = ShopifyConnector("shop", shop.settings())
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "salesforce.yaml"), {"customer": "both"}, crm),
        spokes={
            "shop": System("shop", "shopify", load_mapping(MAPPINGS / "shopify.yaml"), {"customer": "both"}, shopify)
        },
    )
    pipeline = Pipeline(sqlite_store, systems)
    endpoint = Endpoint(pipeline, shopify)
    shopify.subscribe(endpoint.url, ["customers/create", "customers/update"])
    yield World(pipeline, crm, shopify, shop, endpoint)
    endpoint.stop()
    shopify.close()


ADDRESS = {
    "firstName": "Anna",
    "lastName": "Nowak",
    "address1": "ul. Karmelicka 32/3",
    "zip": "31-128",
    "city": "Kraków",
    "countryCode": "PL",
}


def test_a_customer_created_in_shopify_appears_once_in_the_hub(world: World):
    # Given a customer created in the shop's admin (webhook and poll both see it)
    world.shop.add_customer(
        email="anna.nowak@example.pl", firstName="Anna", lastName="Nowak", marketing="SUBSCRIBED", address=ADDRESS
    )
    world.shop.wait_webhooks()
    # When everything runs
    world.pipeline.drain()
    # Then the hub holds exactly one customer, with the shop's values
    assert world.count(golden, golden.c.entity == "customer") == 1
    (record,) = world.crm.system.live("customer").values()
    assert record["Email"] == "anna.nowak@example.pl" and record["MailingCity"] == "Kraków"


def test_an_address_changed_in_the_hub_reaches_shopify_and_does_not_echo(world: World):
    gid = world.shop.add_customer(email="anna.nowak@example.pl", firstName="Anna", lastName="Nowak", address=ADDRESS)
    world.shop.wait_webhooks()
    world.pipeline.drain()
    (crm_id,) = world.crm.system.live("customer")
    crm_writes = len(world.crm.writes)
    # When the address is changed in the CRM
    world.crm.system.edit(
        "customer", crm_id, MailingStreet="ul. Floriańska 15/4", MailingCity="Kraków", MailingPostalCode="31-019"
    )
    world.pipeline.drain()
    world.shop.wait_webhooks()
    world.pipeline.drain()
    # Then Shopify has it, in place
    address = world.shop.customers[gid]["defaultAddress"]
    assert address["address1"] == "ul. Floriańska 15/4" and address["zip"] == "31-019"
    assert len(world.shop.customers[gid]["addresses"]) == 1
    # And our own write, read back by poll and by webhook, wrote nothing more to the CRM or the shop
    shop_calls = [r["operation"] for r in world.shop.requests]
    world.pipeline.drain()
    world.shop.wait_webhooks()
    world.pipeline.drain()
    assert len(world.crm.writes) == crm_writes
    later = [r["operation"] for r in world.shop.requests[len(shop_calls) :]]
    assert not any(op and ("Update" in op or "Create" in op) for op in later), later
    assert len(world.shop.customers) == 1


def test_a_forged_webhook_is_refused_with_401_and_nothing_is_stored(world: World):
    body = json.dumps({"id": 1, "email": "evil@example.com", "updated_at": "2026-11-20T09:00:00Z"}).encode()
    answer = httpx.post(
        world.endpoint.url,
        content=body,
        headers={"X-Shopify-Topic": "customers/update", "X-Shopify-Event-Id": "x", "X-Shopify-Hmac-Sha256": "bm9wZQ=="},
    )
    assert answer.status_code == 401
    assert world.count(inbox) == 0


def test_a_duplicate_webhook_is_ingested_once(world: World):
    world.shop.duplicate_webhooks = True
    world.shop.add_customer(email="jan@example.pl", firstName="Jan")
    assert wait_for(lambda: len(world.shop.deliveries) == 2)
    assert world.endpoint.answers == [200, 200]
    assert world.count(inbox) == 1
    world.pipeline.process_inbox()
    assert world.count(golden) == 1


def test_out_of_order_deliveries_keep_the_newest_values(world: World):
    from datetime import UTC, datetime

    world.shop.pause_webhooks()
    world.shop.freeze(datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC))
    gid = world.shop.add_customer(email="ewa@example.pl", firstName="Ewa")
    world.shop.freeze(datetime(2026, 11, 20, 9, 0, 10, tzinfo=UTC))
    world.shop.edit_customer(gid, firstName="Ewelina")
    world.shop.release_webhooks(reverse=True)  # the update arrives before the create
    world.shop.wait_webhooks()
    world.pipeline.process_inbox()
    (record,) = world.crm.system.live("customer").values() or [{}]
    world.pipeline.drain()
    (record,) = world.crm.system.live("customer").values()
    assert record["FirstName"] == "Ewelina"


def test_an_unknown_topic_is_recorded_and_does_not_stop_the_inbox(world: World):
    from connectors.shopify.webhooks import signature
    from sandbox.shopify import rest  # noqa: F401  (the payload shape is irrelevant here)

    body = b'{"id": 1, "name": "acme"}'
    headers = {
        "X-Shopify-Topic": "shop/update",
        "X-Shopify-Event-Id": "s-1",
        "X-Shopify-Hmac-Sha256": signature(world.shop.webhook_secret, body),
    }
    assert httpx.post(world.endpoint.url, content=body, headers=headers).status_code == 200
    assert world.count(inbox) == 1
    world.pipeline.process_inbox()
    assert world.count(inbox, inbox.c.status == "pending") == 0
    assert world.count(inbox, inbox.c.status == "ignored") == 1


def test_a_redact_request_erases_the_person_everywhere(world: World):
    from connectors.shopify.webhooks import signature

    gid = world.shop.add_customer(email="ola.redact@example.pl", firstName="Ola", lastName="Kos", address=ADDRESS)
    world.shop.wait_webhooks()
    world.pipeline.drain()
    assert len(world.crm.system.live("customer")) == 1
    # Shopify's mandatory GDPR webhook: customers/redact names the customer by numeric id
    body = json.dumps({"shop_id": 1, "customer": {"id": int(gid.rsplit("/", 1)[1]), "email": "ola.redact@example.pl"}})
    headers = {
        "X-Shopify-Topic": "customers/redact",
        "X-Shopify-Event-Id": "redact-1",
        "X-Shopify-Hmac-Sha256": signature(world.shop.webhook_secret, body.encode()),
    }
    assert httpx.post(world.endpoint.url, content=body.encode(), headers=headers).status_code == 200
    world.pipeline.process_inbox()
    world.pipeline.drain()
    with world.pipeline.store.begin() as conn:
        assert conn.execute(select(golden.c.state).where(golden.c.entity == "customer")).scalar_one() == "erased"
    assert world.crm.system.live("customer") == {}
    assert world.count(inbox, inbox.c.status == "done") >= 1
