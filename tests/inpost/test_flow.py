"""End to end: a locker order from the shop → hub Order → one InPost shipment → tracking number to the
hub and the shop → status changes on the hub's Shipment and as touchpoints."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from sqlalchemy import update

from core.connector import WebhookRejected
from core.store.db import Store
from core.store.schema import outbox
from core.sync.replay import open_dead_letters, replay
from sandbox.inpost import ShipXEmulator
from tests.inpost.deployment import ORGANIZATION, TOKEN, InPostDeployment, deployment


@pytest.fixture
def shipx() -> Iterator[ShipXEmulator]:
    with ShipXEmulator(token=TOKEN, organization_id=ORGANIZATION) as emulator:
        yield emulator


@pytest.fixture
def d(store: Store, shipx: ShipXEmulator, tmp_path: Path) -> InPostDeployment:
    return deployment(store, shipx, tmp_path)


def only(records: dict) -> tuple[str, dict]:
    assert len(records) == 1, records
    return next(iter(records.items()))


def test_a_locker_order_ships_once_and_its_status_reaches_the_hub_and_the_shop(d: InPostDeployment):
    # Given a shop order for pickup at Paczkomat KRA010
    shop_order = d.place_locker_order("KRA010")
    # When the hub syncs
    d.pipeline.drain()
    # Then the hub holds the order, and InPost exactly one shipment for it, referenced by its canonical id
    order_id = d.canonical_id("order", "shop", shop_order)
    crm_order_id, crm_order = only(d.crm.system.live("order"))
    assert crm_order["Locker_Point__c"] == "KRA010" and crm_order["Delivery_Method__c"] == "parcel_locker"
    [shipment] = d.shipx.shipments()
    assert shipment["reference"] == order_id
    assert shipment["custom_attributes"]["target_point"] == "KRA010"
    assert shipment["receiver"]["email"] == "anna.nowak@example.pl"
    assert shipment["receiver"]["phone"] == "600100200"
    tn = shipment["tracking_number"]
    assert tn
    # And the tracking number is on the hub's Shipment, linked to the hub's order
    _, crm_shipment = only(d.crm.system.live("shipment"))
    assert crm_shipment["Tracking_Number__c"] == tn
    assert crm_shipment["Order__c"] == crm_order_id
    assert crm_shipment["Status__c"] == "label_ready"
    assert crm_shipment["Locker_Point__c"] == "KRA010"
    # And on to the shop as a fulfilment of its order
    _, fulfilment = only(d.shop.system.live("shipment"))
    assert fulfilment["order"]["id"] == shop_order
    assert fulfilment["trackingInfo"][0] == {
        "number": tn,
        "url": f"https://inpost.pl/sledzenie-przesylek?number={tn}",
        "company": "InPost",
    }

    # When the parcel is placed in the locker, then picked up
    d.shipx.advance(shipment["id"], "ready_to_pickup")
    d.pipeline.drain()
    _, crm_shipment = only(d.crm.system.live("shipment"))
    assert crm_shipment["Status__c"] == "ready_for_pickup"
    d.shipx.advance(shipment["id"], "delivered")
    d.pipeline.drain()

    # Then the hub's Shipment says delivered, with the history, and each moment is a touchpoint
    _, crm_shipment = only(d.crm.system.live("shipment"))
    assert crm_shipment["Status__c"] == "delivered"
    [(_, golden_shipment)] = d.goldens("shipment")
    assert golden_shipment["order_id"] == order_id
    assert [e["status"] for e in golden_shipment["status_history"]] == [
        "delivered",
        "ready_for_pickup",
        "label_ready",
        "created",
    ]
    customer_id = d.canonical_id("customer", "shop", "gid://shopify/Customer/7414567371")
    crm_contact = d.native_id("customer", "crm", customer_id)
    tasks = sorted(d.crm.system.live("touchpoint").values(), key=lambda t: t["Occurred_At__c"])
    assert [(t["Touchpoint_Kind__c"], t["Channel__c"], t["WhoId"]) for t in tasks] == [
        ("parcel_ready", "locker", crm_contact),
        ("pickup", "locker", crm_contact),
    ]
    assert all(t["Source_Reference__c"] == tn and t["Source_System__c"] == "inpost" for t in tasks)
    # And still one shipment: nothing was created twice along the way
    d.pipeline.drain()
    assert d.shipx.state.creates == 1 and len(d.shipx.shipments()) == 1
    assert d.dead_letters("inpost") == []


def test_an_unknown_point_keeps_the_order_and_the_dead_letter_replays_once_the_point_exists(d: InPostDeployment):
    # Given an order for a point InPost does not know (yet)
    d.inpost.missing_point_ttl = 0.0  # no negative caching, to replay straight away
    d.place_locker_order("KRA99X")
    d.pipeline.drain()
    # Then no shipment; the order is kept in the hub; the InPost write is a dead letter that says why
    assert d.shipx.state.creates == 0
    _, crm_order = only(d.crm.system.live("order"))
    assert crm_order["Locker_Point__c"] == "KRA99X"
    # (the CRM's echo of the order re-tried it once more: each change of a record not yet in InPost does)
    deads = d.dead_letters("inpost")
    assert deads and {(x.error, x.entity) for x in deads} == {("point KRA99X does not exist", "order")}
    # When InPost's point list has it (a locker just opened) and the dead letters are replayed
    d.shipx.add_point("KRA99X")
    replayed = replay(d.pipeline, open_dead_letters(d.pipeline, system="inpost"))
    # Then they go out again (two rows of one order: the reference makes it one shipment)
    assert {r.outcome for r in replayed} == {"requeued"}
    d.pipeline.drain()
    # Then the shipment is created, once
    [shipment] = d.shipx.shipments()
    assert shipment["custom_attributes"]["target_point"] == "KRA99X"
    replay(d.pipeline, open_dead_letters(d.pipeline, system="inpost"))
    d.pipeline.drain()
    assert d.shipx.state.creates == 1


def test_a_point_corrected_in_the_hub_ships_to_it_and_the_old_dead_letter_is_superseded(d: InPostDeployment):
    # Given an order whose point is wrong, dead-lettered on its way to InPost
    d.place_locker_order("KRA99X")
    d.pipeline.drain()
    deads = d.dead_letters("inpost")
    assert deads and all("KRA99X" in x.error for x in deads)
    # When an agent corrects the locker on the order in the CRM
    crm_order_id, _ = only(d.crm.system.live("order"))
    d.crm.system.edit("order", crm_order_id, Locker_Point__c="KRA010")
    d.pipeline.drain()
    # Then the shipment goes to the corrected point, and replaying the old dead letter changes nothing
    [shipment] = d.shipx.shipments()
    assert shipment["custom_attributes"]["target_point"] == "KRA010"
    replayed = replay(d.pipeline, [x.id for x in deads])
    assert {r.outcome for r in replayed} == {"superseded"}
    d.pipeline.drain()
    assert d.shipx.state.creates == 1


def test_a_create_retried_by_the_outbox_after_a_lost_reply_makes_one_shipment(
    store: Store, shipx: ShipXEmulator, tmp_path: Path
):
    # Given no in-call retries, and ShipX losing the reply to the first create
    d = deployment(store, shipx, tmp_path, retries=0)
    shipx.lose_create_replies(1)
    d.place_locker_order("KRA010")
    d.pipeline.drain()
    # Then the outbox scheduled a retry; the shipment exists once already
    assert shipx.state.creates == 1
    # When the retry comes due (its back-off is made due now) and runs
    with d.pipeline.store.begin() as conn:
        conn.execute(update(outbox).where(outbox.c.status == "pending").values(next_attempt_at=d.pipeline.clock()))
    d.pipeline.drain()
    # Then the order is linked to the one shipment made the first time
    [shipment] = shipx.shipments()
    order_id = d.goldens("order")[0][0]
    assert d.native_id("order", "inpost", order_id) == str(shipment["id"])
    assert shipx.state.creates == 1


def test_status_changes_arrive_by_webhook_without_polling(store: Store, tmp_path: Path):
    # Given ShipX posting status changes to our endpoint, which lands them in the inbox
    receiver = _WebhookEndpoint()
    try:
        with ShipXEmulator(token=TOKEN, organization_id=ORGANIZATION, webhook_url=receiver.url) as shipx:
            d = deployment(store, shipx, tmp_path)
            receiver.deployment = d
            d.place_locker_order("KRA010")
            d.pipeline.drain()
            [shipment] = shipx.shipments()
            # When the parcel reaches the locker, and only the inbox and the CRM's outbox are worked
            shipx.advance(shipment["id"], "ready_to_pickup")
            assert receiver.accepted, "the webhook did not arrive"
            d.pipeline.process_inbox()
            d.pipeline.flush("crm")
            # Then the hub's Shipment and a touchpoint show it, no InPost poll involved
            _, crm_shipment = only(d.crm.system.live("shipment"))
            assert crm_shipment["Status__c"] == "ready_for_pickup"
            assert [t["Touchpoint_Kind__c"] for t in d.crm.system.live("touchpoint").values()] == ["parcel_ready"]
            # And a redelivered webhook is not a second event
            headers, body = receiver.raw[-1]
            events = d.inpost.parse_webhook(headers, body)
            assert all(d.pipeline.accept("inpost", e.entity, e.event_id, e.record) is None for e in events)
    finally:
        receiver.stop()


class _WebhookEndpoint:
    """Our webhook endpoint on 127.0.0.1: verify and parse with the connector, land events in the inbox."""

    def __init__(self) -> None:
        self.deployment: InPostDeployment | None = None
        self.accepted: list[int] = []
        self.raw: list[tuple[dict[str, str], bytes]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = dict(self.headers.items())
                status = 200
                d = endpoint.deployment
                if d is not None:
                    endpoint.raw.append((headers, body))
                    try:
                        for e in d.inpost.parse_webhook(headers, body):
                            row = d.pipeline.accept("inpost", e.entity, e.event_id, e.record)
                            if row is not None:
                                endpoint.accepted.append(row)
                    except WebhookRejected as exc:
                        status = exc.status
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/inpost"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _first_locker_order() -> tuple[dict, dict]:
    """The shipped sample customer (shop form) and their first order, for Paczkomat KRA010."""
    import json

    from tests.inpost.deployment import MAPPINGS

    customer = json.loads((MAPPINGS / "samples" / "shopify-customer.json").read_text(encoding="utf-8"))
    order = json.loads((MAPPINGS / "samples" / "shopify-order.json").read_text(encoding="utf-8"))
    order["customer"] = {"id": customer["id"]}
    order["customAttributes"] = [{"key": "inpost_point", "value": "KRA010"}]
    return customer, order


def test_an_order_that_arrives_before_its_customer_is_sent_once_the_customer_is_there(d: InPostDeployment):
    # Given a new customer's first order, read from the shop *before* the customer itself
    customer, order = _first_locker_order()
    d.shop.system.put("order", order, native_id=order["id"])
    d.pipeline.poll("shop", "order")
    # the order cannot be read yet: the customer it refers to is unknown
    [waiting] = d.dead_letters("shop")
    assert "no customer with id" in waiting.error and waiting.status == "open"
    # When the customer arrives and everything syncs
    d.shop.system.put("customer", customer, native_id=customer["id"])
    d.pipeline.drain()
    # Then the order reached the CRM after all, linked to its contact, and the dead letters healed themselves
    assert [r.status for r in d.dead_letters("shop") + d.dead_letters("crm")] in (
        ["replayed"],
        ["replayed", "replayed"],
    )
    [(contact_id, _)] = d.crm.system.live("customer").items()
    [(_, crm_order)] = d.crm.system.live("order").items()
    assert contact_id in crm_order.values()
    assert len(d.shipx.shipments()) == 1


def test_an_order_waiting_for_its_customer_in_the_crm_is_sent_once_a_poll_links_that_customer(d: InPostDeployment):
    # Given a new shop customer and their first order, read before the CRM knows the customer
    customer, order = _first_locker_order()
    d.shop.system.put("customer", customer, native_id=customer["id"])
    d.shop.system.put("order", order, native_id=order["id"])
    d.pipeline.poll("shop", "customer")
    d.pipeline.poll("shop", "order")
    # the order's write to the CRM waits: its customer has no id there yet
    waiting = [dl for dl in d.dead_letters("crm") if dl.status == "open"]
    assert waiting and all("has no id in" in dl.error for dl in waiting)
    # When someone in the CRM had entered the same person, and a poll of the CRM links that contact
    # (the customer's id in the CRM comes from a read, not from our write)
    contact = d.crm.system.put("customer", {"LastName": "Nowak", "FirstName": "Anna", "Email": "ANNA.NOWAK@example.pl"})
    d.pipeline.poll("crm", "customer")
    d.pipeline.drain()
    # Then the order reached the CRM after all, on that contact, and no dead letter is left open
    assert [dl.status for dl in d.dead_letters("crm") if dl.status == "open"] == []
    [(_, crm_order)] = d.crm.system.live("order").items()
    assert contact in crm_order.values()
    assert len(d.crm.system.live("customer")) == 1
