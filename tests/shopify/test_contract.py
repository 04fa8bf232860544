"""The connector against the emulator: reads, cursor, throttling, bulk, writes, webhooks."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from connectors.shopify import ShopifyConnector
from connectors.shopify.bulk import reassemble
from connectors.shopify.cursor import Cursor
from connectors.shopify.webhooks import signature
from core.connector import WebhookRejected, WriteRequest
from core.errors import ConfigError, RateLimited, RecordRejected, TransientError
from sandbox.shopify.emulator import ShopifyEmulator


def read_all(c: ShopifyConnector, entity: str, cursor: str | None = None, limit: int = 500) -> tuple[list, str | None]:
    records = []
    while True:
        page = c.read_changes(entity, cursor, limit)
        records.extend(page.records)
        cursor = page.cursor
        if not page.more:
            return records, cursor


# --- reads ---------------------------------------------------------------------------------------


def test_customers_are_read_with_consent_address_and_metafields(shop: ShopifyEmulator, connector: ShopifyConnector):
    # Given a customer with consent, an address and a loyalty id
    gid = shop.add_customer(
        email="anna.nowak@example.pl",
        marketing="SUBSCRIBED",
        firstName="Anna",
        address={"address1": "ul. Karmelicka 32/3", "zip": "31-128", "city": "Kraków", "countryCode": "PL"},
        metafields={("loyalty", "id"): "KL-008120"},
    )
    # When read
    records, _ = read_all(connector, "customer")
    # Then it comes in the shape the mapping reads
    (r,) = records
    assert r.native_id == gid
    assert r.data["defaultEmailAddress"]["marketingState"] == "SUBSCRIBED"
    assert r.data["defaultAddress"]["city"] == "Kraków"
    assert r.data["loyaltyId"] == {"value": "KL-008120"}
    assert isinstance(r.updated_at, datetime)


def test_rows_sharing_a_timestamp_are_neither_skipped_nor_repeated(shop: ShopifyEmulator, connector: ShopifyConnector):
    # Given 7 customers updated in the same second, read 3 at a time
    shop.freeze(datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC))
    ids = {shop.add_customer(email=f"c{i}@example.pl") for i in range(7)}
    records, cursor = read_all(connector, "customer", limit=3)
    assert [r.native_id for r in records] == sorted(ids, key=lambda g: int(g.rsplit("/", 1)[1]))
    # When two more arrive in that same second, and the next read starts from the cursor
    later = {shop.add_customer(email=f"d{i}@example.pl") for i in range(2)}
    again, cursor2 = read_all(connector, "customer", cursor, limit=3)
    # Then exactly the new ones come, and the cursor keeps T with all ids seen at T
    assert {r.native_id for r in again} == later
    decoded = Cursor.decode(cursor2)
    assert decoded.since == "2026-11-20T09:00:00Z" and set(decoded.seen) == ids | later
    # And a read with nothing new returns nothing
    assert read_all(connector, "customer", cursor2)[0] == []


def test_a_second_that_is_over_is_not_read_again_by_idle_polls(shop: ShopifyEmulator, connector: ShopifyConnector):
    # Given 250 customers saved in one second T (a bulk edit), read in pages of 100
    t = datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC)
    shop.freeze(t)
    ids = {shop.add_customer(email=f"bulk{i}@example.pl") for i in range(250)}
    records, cursor = read_all(connector, "customer")
    assert {r.native_id for r in records} == ids

    def idle_poll(cursor: str | None) -> tuple[int, str | None]:
        before = len(shop.requests)
        again, cursor = read_all(connector, "customer", cursor)
        assert again == []
        return len(shop.requests) - before, cursor

    # When the shop polls again 2 s later, T may still get records: it is read again, all 3 pages
    shop.freeze(t + timedelta(seconds=2))
    calls, cursor = idle_poll(cursor)
    assert calls == 3 and not Cursor.decode(cursor).closed
    # When a poll begins more than `settle` (5 s) after T, by the shop's clock, it reads T once more
    shop.freeze(t + timedelta(seconds=7))
    calls, cursor = idle_poll(cursor)
    assert calls == 3
    # Then T is closed: the cursor keeps no ids, and each later idle poll is one call
    closed = Cursor.decode(cursor)
    assert closed.closed and closed.since == "2026-11-20T09:00:00Z" and closed.seen == []
    assert len(cursor or "") < 100
    for _ in range(3):
        calls, cursor = idle_poll(cursor)
        assert calls == 1
    # And a change after T is read, once
    shop.freeze(t + timedelta(seconds=8))
    changed = next(iter(ids))
    shop.edit_customer(changed, firstName="Zmieniona")
    records, cursor = read_all(connector, "customer", cursor)
    assert [r.native_id for r in records] == [changed]
    assert read_all(connector, "customer", cursor)[0] == []


def test_a_late_answer_does_not_close_the_second_its_query_read(shop: ShopifyEmulator):
    # Given a customer saved in second S, and a read whose query runs in S but whose answer comes
    # 2 s late (its Date header says S+2), with settle at 1 s
    connector = ShopifyConnector("shop_pl", shop.settings(settle=1))
    while datetime.now(UTC).microsecond > 100_000:  # start early in a second: all of it happens in S
        time.sleep(0.01)
    shop.add_customer(email="first@example.pl")
    shop.stall_next(1, 2.0)
    pages: list[tuple[list, str | None]] = []
    asked = len(shop.requests)
    reader = threading.Thread(target=lambda: pages.append(read_all(connector, "customer")))
    reader.start()
    while len(shop.requests) == asked:  # the emulator logs a query once it has run; its answer waits
        time.sleep(0.005)
    # When another customer is saved in S after the query ran
    late = shop.add_customer(email="late@example.pl")
    reader.join(10)
    (first_read, cursor) = pages[0]
    assert len(first_read) == 1
    # Then S is not closed (the shop's time when the query ran is the Date less the call's 2 s),
    # and the next read brings the customer saved after the query
    assert not Cursor.decode(cursor).closed
    records, _ = read_all(connector, "customer", cursor)
    assert [r.native_id for r in records] == [late]
    connector.close()


def test_without_the_shops_time_no_second_is_closed():
    # A page answered without a usable Date header: the cursor keeps T and its ids, as before
    _, nxt = Cursor().step([("gid://shopify/Customer/1", "2020-01-01T00:00:00Z")], False, None, None)
    assert nxt == Cursor("2020-01-01T00:00:00Z", ["gid://shopify/Customer/1"])
    # and a cursor written before closing existed reads as an open one
    assert not Cursor.decode('{"t":"2020-01-01T00:00:00Z","ids":["a"]}').closed


def test_the_incremental_query_asks_updated_at_at_or_after_the_cursor(
    shop: ShopifyEmulator, connector: ShopifyConnector
):
    shop.freeze(datetime(2026, 11, 20, 9, 0, 0, tzinfo=UTC))
    old = shop.add_customer(email="old@example.pl")
    _, cursor = read_all(connector, "customer")
    shop.freeze(datetime(2026, 11, 20, 9, 0, 5, tzinfo=UTC))
    shop.edit_customer(old, firstName="Stara")
    new = shop.add_customer(email="new@example.pl")
    records, _ = read_all(connector, "customer", cursor)
    assert [r.native_id for r in records] == [old, new]  # oldest first, each once


def test_orders_come_with_lines_shipping_pickup_and_fulfilments(shop: ShopifyEmulator, connector: ShopifyConnector):
    shop.add_order(
        lines=[{"sku": "KUB-TERM-350", "price": "89.95", "quantity": 2}],
        delivery="PICK_UP",
        shippingLine={
            "title": "Odbiór osobisty",
            "code": "Odbiór osobisty",
            "source": "shopify",
            "deliveryCategory": "pick-up",
            "originalPriceSet": {"shopMoney": {"amount": "0.00", "currencyCode": "PLN"}},
        },
        customAttributes=[{"key": "pickup_store", "value": "KRK-FLO"}],
    )
    (r,) = read_all(connector, "order")[0]
    assert r.data["lineItems"]["nodes"][0]["quantity"] == 2
    assert r.data["shippingLine"]["code"] == "Odbiór osobisty"
    assert r.data["fulfillmentOrders"]["nodes"][0]["deliveryMethod"]["methodType"] == "PICK_UP"
    assert r.data["fulfillments"] == []


def test_inventory_levels_are_read_per_location(shop: ShopifyEmulator, connector: ShopifyConnector):
    shop.add_location("Magazyn Kraków")
    shop.add_location("Sklep Kraków Floriańska")
    shop.add_item("KUB-TERM-350", {"Magazyn Kraków": 37, "Sklep Kraków Floriańska": 4})
    records, _ = read_all(connector, "stock_level")
    by_location = {r.data["location"]["name"]: r.data for r in records}
    assert by_location["Magazyn Kraków"]["item"]["sku"] == "KUB-TERM-350"
    assert {"name": "available", "quantity": 37} in by_location["Magazyn Kraków"]["quantities"]
    assert len(records) == 2


# --- throttling ----------------------------------------------------------------------------------


def test_a_throttled_call_is_waited_out_for_exactly_the_missing_points(shop: ShopifyEmulator):
    waits: list[float] = []
    clock = [0.0]  # the bucket's time moves only when the connector waits: no refill by a slow machine

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock[0] += seconds

    c = ShopifyConnector("shop_pl", shop.settings(), sleep=sleep)
    shop.add_customer(email="a@example.pl")
    # Given an empty bucket that Shopify refills at 2000 points/s (fast, for the test)
    shop.bucket.now = lambda: clock[0]
    shop.bucket.set(0)
    # When the connector reads
    records, _ = read_all(c, "customer")
    # Then Shopify said THROTTLED once, the connector waited (requested − available)/restoreRate, and retried
    assert shop.throttled == 1
    assert records and records[0].data["defaultEmailAddress"]["emailAddress"] == "a@example.pl"
    requested = shop.requests[0]["requested"]
    assert waits and waits[0] == pytest.approx(requested / 2000.0, abs=1e-3)
    assert c.client.throttled == shop.throttled


def test_pacing_keeps_throttling_rare(shop: ShopifyEmulator):
    slow = ShopifyEmulator(restore_rate=500.0, maximum=1000.0)
    try:
        c = ShopifyConnector("p", slow.settings())
        for i in range(100):
            slow.add_customer(email=f"p{i}@example.pl")
        for _ in range(6):  # ~700 points requested each through a 1,000-point bucket
            c.read_changes("customer", None, 100)
        assert slow.throttled <= 1
        assert c.client.waited > 0  # it paced itself instead
    finally:
        slow.stop()


def test_throttling_longer_than_max_wait_raises_rate_limited_with_retry_after(shop: ShopifyEmulator):
    slow = ShopifyEmulator(restore_rate=1.0)
    try:
        c = ShopifyConnector("p", slow.settings(max_wait=0.5), sleep=lambda s: None)
        slow.bucket.set(0)
        with pytest.raises(RateLimited) as caught:
            c.read_changes("customer", None)
        assert caught.value.retry_after is not None and caught.value.retry_after > 0.5
    finally:
        slow.stop()


def test_a_wrong_token_is_a_config_error(shop: ShopifyEmulator):
    c = ShopifyConnector("p", {**shop.settings(), "token": "wrong"})
    with pytest.raises(ConfigError):
        c.read_changes("customer", None)


def test_an_unreachable_shop_is_transient():
    c = ShopifyConnector("p", {"base_url": "http://127.0.0.1:9", "token": "t"}, sleep=lambda s: None)
    with pytest.raises(TransientError):
        c.read_changes("customer", None)


def test_a_mutation_whose_answer_times_out_is_not_repeated_blind_but_a_query_is(shop: ShopifyEmulator):
    # Given a customer, and a connector with a short timeout
    gid = shop.add_customer(email="ola@example.pl", firstName="Ola")
    c = ShopifyConnector("p", {**shop.settings(), "timeout": 0.3}, sleep=lambda s: None)
    # When an update is carried out but answered after the timeout
    shop.stall_next(1, 0.6)
    (result,) = c.write("customer", [WriteRequest("00000000-0000-4000-8000-000000000001", gid, {"firstName": "Ala"})])
    # Then the record's write failed transiently after one call: the pipeline reads it back before a retry
    assert isinstance(result.error, TransientError) and "may have been carried out" in str(result.error)
    assert [r["operation"] for r in shop.requests].count("SynchubCustomerUpdate") == 1
    assert shop.customers[gid]["firstName"] == "Ala"
    # while a query answered late is asked again and answers
    shop.stall_next(1, 0.6)
    records, _ = read_all(c, "customer")
    assert [r.data["firstName"] for r in records] == ["Ala"]
    assert [r["operation"] for r in shop.requests].count("SynchubCustomers") == 2
    c.close()


def test_fetch_written_finds_a_customer_by_the_canonical_id_our_create_stamped(
    shop: ShopifyEmulator, connector: ShopifyConnector
):
    cid = "00000000-0000-4000-8000-000000000007"
    (made,) = connector.write("customer", [WriteRequest(cid, None, {"firstName": "Ola", "email": "ola7@example.pl"})])
    found = connector.fetch_written("customer", [cid, "00000000-0000-4000-8000-000000000008"])
    assert [r.native_id for r in found] == [made.native_id]


# --- bulk ----------------------------------------------------------------------------------------


def test_bulk_backfill_streams_every_order_with_its_children(shop: ShopifyEmulator, connector: ShopifyConnector):
    connector.sleep = lambda s: None
    for i in range(5):
        shop.add_order(lines=[{"sku": f"S{i}", "price": "10"}, {"sku": f"T{i}", "price": "5", "quantity": 3}])
    pages = list(connector.backfill("order", page=2))
    records = [r for p in pages for r in p.records]
    assert len(records) == 5 and [len(p.records) for p in pages] == [2, 2, 1]
    assert all(len(r.data["lineItems"]["nodes"]) == 2 for r in records)
    assert records[0].data["lineItems"]["nodes"][1]["quantity"] == 3
    assert [p.cursor for p in pages[:-1]] == [None, None] and Cursor.decode(pages[-1].cursor).since


def test_bulk_backfill_then_incremental_reads_continue_from_its_start(
    shop: ShopifyEmulator, connector: ShopifyConnector
):
    connector.sleep = lambda s: None
    shop.add_customer(email="a@example.pl")
    *_, last = connector.backfill("customer")
    shop.add_customer(email="b@example.pl")
    records, _ = read_all(connector, "customer", last.cursor)
    assert "b@example.pl" in {r.data["defaultEmailAddress"]["emailAddress"] for r in records}


def test_reassembly_keeps_one_root_in_memory_and_refuses_ungrouped_files():
    lines = [
        json.dumps({"id": "gid://shopify/Order/1"}),
        json.dumps({"id": "gid://shopify/LineItem/2", "__parentId": "gid://shopify/Order/1"}),
        json.dumps({"id": "gid://shopify/Order/3"}),
    ]
    out = list(reassemble(iter(lines), {"LineItem": "lineItems"}))
    assert out[0]["lineItems"]["nodes"] == [{"id": "gid://shopify/LineItem/2"}] and out[1]["lineItems"]["nodes"] == []
    with pytest.raises(Exception, match="does not follow"):
        list(reassemble(iter([lines[0], lines[2], lines[1]]), {"LineItem": "lineItems"}))


# --- writes --------------------------------------------------------------------------------------

PAYLOAD = {
    "firstName": "Małgorzata",
    "lastName": "Wiśniewska",
    "defaultEmailAddress": {
        "emailAddress": "m.w@example.pl",
        "marketingState": "SUBSCRIBED",
        "marketingOptInLevel": "SINGLE_OPT_IN",
    },
    "defaultAddress": {"address1": "ul. Floriańska 15/4", "zip": "31-019", "city": "Kraków", "countryCodeV2": "PL"},
    "loyaltyId": {"value": "KL-004512"},
    "tags": ["vip"],
}


def test_customer_create_stores_the_canonical_id_in_a_metafield(shop: ShopifyEmulator, connector: ShopifyConnector):
    (res,) = connector.write("customer", [WriteRequest("cid-1", None, PAYLOAD)])
    assert res.ok
    c = shop.customers[res.native_id]
    assert c["_metafields"][("synchub", "id")] == "cid-1"
    assert c["defaultEmailAddress"]["marketingState"] == "SUBSCRIBED"
    assert c["defaultAddress"]["city"] == "Kraków"


def test_a_crash_between_create_and_cross_reference_does_not_duplicate(
    shop: ShopifyEmulator, connector: ShopifyConnector
):
    # Given a create whose answer was lost (no native id recorded by the core)
    (first,) = connector.write("customer", [WriteRequest("cid-2", None, PAYLOAD)])
    # When the same write is retried without a native id
    (again,) = connector.write("customer", [WriteRequest("cid-2", None, {**PAYLOAD, "firstName": "Gosia"})])
    # Then the same customer is updated, not a second created
    assert again.native_id == first.native_id and len(shop.customers) == 1
    assert shop.customers[first.native_id]["firstName"] == "Gosia"


def test_an_update_changes_address_in_place_and_consent(shop: ShopifyEmulator, connector: ShopifyConnector):
    (first,) = connector.write("customer", [WriteRequest("cid-3", None, PAYLOAD)])
    address_id = shop.customers[first.native_id]["defaultAddress"]["id"]
    changed = {
        **PAYLOAD,
        "defaultAddress": {**PAYLOAD["defaultAddress"], "city": "Warszawa"},
        "defaultEmailAddress": {**PAYLOAD["defaultEmailAddress"], "marketingState": "UNSUBSCRIBED"},
    }
    (res,) = connector.write("customer", [WriteRequest("cid-3", first.native_id, changed)])
    c = shop.customers[res.native_id]
    assert c["defaultAddress"]["id"] == address_id and c["defaultAddress"]["city"] == "Warszawa"
    assert len(c["addresses"]) == 1
    assert c["defaultEmailAddress"]["marketingState"] == "UNSUBSCRIBED"


def test_user_errors_reject_the_record_with_message_and_field_and_the_batch_goes_on(
    shop: ShopifyEmulator, connector: ShopifyConnector
):
    shop.add_customer(email="taken@example.pl")
    bad = {**PAYLOAD, "defaultEmailAddress": {"emailAddress": "taken@example.pl"}}
    res = connector.write("customer", [WriteRequest("x", None, bad), WriteRequest("y", None, PAYLOAD)])
    assert isinstance(res[0].error, RecordRejected)
    assert "Email has already been taken" in str(res[0].error) and "email" in str(res[0].error)
    assert res[1].ok


def test_order_tags_and_note(shop: ShopifyEmulator, connector: ShopifyConnector):
    gid = shop.add_order(lines=[{"sku": "A", "price": "1"}])
    (res,) = connector.write(
        "order", [WriteRequest("o1", gid, {"tags": ["vip", "reklamacja"], "note": "Nowy kubek wysłany."})]
    )
    assert (
        res.ok
        and shop.orders[gid]["tags"] == ["vip", "reklamacja"]
        and shop.orders[gid]["note"] == "Nowy kubek wysłany."
    )
    (missing,) = connector.write("order", [WriteRequest("o2", None, {"tags": []})])
    assert isinstance(missing.error, RecordRejected)


def test_fulfilment_with_inpost_tracking_is_created_once(shop: ShopifyEmulator, connector: ShopifyConnector):
    gid = shop.add_order(lines=[{"sku": "A", "price": "1"}])
    payload = {"order": {"id": gid}, "trackingInfo": {"number": "620000000000000000000001", "company": "InPost"}}
    (first,) = connector.write("shipment", [WriteRequest("s1", None, payload)])
    (again,) = connector.write("shipment", [WriteRequest("s1", None, payload)])
    assert first.ok and again.native_id == first.native_id
    (f,) = shop.orders[gid]["fulfillments"]
    assert f["trackingInfo"] == [{"number": "620000000000000000000001", "company": "InPost", "url": None}]
    assert shop.orders[gid]["displayFulfillmentStatus"] == "FULFILLED"


def test_inventory_quantities_from_the_erp_in_one_call_with_per_record_errors(
    shop: ShopifyEmulator, connector: ShopifyConnector
):
    shop.add_location("Magazyn Kraków")
    shop.add_location("Sklep Kraków Floriańska")
    shop.add_item("KUB-TERM-350", {"Magazyn Kraków": 37})

    def req(cid: str, sku: str, loc: str, qty: int) -> WriteRequest:
        return WriteRequest(
            cid,
            None,
            {"item": {"sku": sku}, "location": {"name": loc}, "quantities": [{"name": "available", "quantity": qty}]},
        )

    # Given one good record, one unknown SKU and one item not stocked at the location
    res = connector.write(
        "stock_level",
        [
            req("a", "KUB-TERM-350", "Magazyn Kraków", 35),
            req("b", "NOPE", "Magazyn Kraków", 1),
            req("c", "KUB-TERM-350", "Sklep Kraków Floriańska", 2),
        ],
    )
    assert isinstance(res[1].error, RecordRejected) and res[1].error.code == "UNKNOWN_SKU"
    assert isinstance(res[2].error, RecordRejected) and res[2].error.code == "INVALID_LOCATION"
    # Shopify applies all or nothing: the good one is retried, alone, and then lands
    assert isinstance(res[0].error, TransientError)
    (ok,) = connector.write("stock_level", [req("a", "KUB-TERM-350", "Magazyn Kraków", 35)])
    assert ok.ok and "InventoryLevel" in ok.native_id
    assert {"name": "available", "quantity": 35} in shop.level("KUB-TERM-350", "Magazyn Kraków")["quantities"]


# --- webhooks ------------------------------------------------------------------------------------


def _signed(body: bytes, secret: str, topic: str = "customers/update", event: str = "e-1") -> dict[str, str]:
    return {
        "X-Shopify-Hmac-Sha256": signature(secret, body),
        "X-Shopify-Topic": topic,
        "X-Shopify-Event-Id": event,
        "X-Shopify-Webhook-Id": "w-1",
    }


CUSTOMER_REST = {
    "id": 7414567371,
    "admin_graphql_api_id": "gid://shopify/Customer/7414567371",
    "email": "anna.nowak@example.pl",
    "first_name": "Anna",
    "last_name": "Nowak",
    "phone": "+48600100200",
    "tags": "vip, newsletter",
    "note": None,
    "updated_at": "2026-11-20T10:15:00+01:00",
    "default_address": {
        "id": 1,
        "first_name": "Anna",
        "address1": "ul. Karmelicka 32/3",
        "zip": "31-128",
        "city": "Kraków",
        "country_code": "PL",
    },
    "email_marketing_consent": {
        "state": "subscribed",
        "opt_in_level": "confirmed_opt_in",
        "consent_updated_at": "2026-10-03T17:21:09Z",
    },
    "metafields": [{"namespace": "loyalty", "key": "id", "value": "KL-008120"}],
}


def test_webhook_payload_becomes_the_graphql_shape(connector: ShopifyConnector, shop: ShopifyEmulator):
    body = json.dumps(CUSTOMER_REST).encode()
    (event,) = connector.parse_webhook(_signed(body, shop.webhook_secret), body)
    assert event.entity == "customer" and event.event_id == "customers/update:e-1"
    r = event.record
    assert r["id"] == "gid://shopify/Customer/7414567371"
    assert r["defaultEmailAddress"] == {
        "emailAddress": "anna.nowak@example.pl",
        "marketingState": "SUBSCRIBED",
        "marketingOptInLevel": "CONFIRMED_OPT_IN",
        "marketingUpdatedAt": "2026-10-03T17:21:09Z",
    }
    assert r["tags"] == ["vip", "newsletter"] and r["updatedAt"] == "2026-11-20T09:15:00Z"
    assert r["defaultAddress"]["countryCodeV2"] == "PL" and r["loyaltyId"] == {"value": "KL-008120"}


@pytest.mark.parametrize("headers", [{}, {"X-Shopify-Hmac-Sha256": "Zm9yZ2Vk"}], ids=["missing", "forged"])
def test_missing_or_forged_hmac_is_refused_with_401(connector: ShopifyConnector, headers: dict[str, str]):
    body = json.dumps(CUSTOMER_REST).encode()
    with pytest.raises(WebhookRejected) as caught:
        connector.parse_webhook({"X-Shopify-Topic": "customers/update", "X-Shopify-Event-Id": "e", **headers}, body)
    assert caught.value.status == 401


def test_a_body_changed_after_signing_is_refused(connector: ShopifyConnector, shop: ShopifyEmulator):
    body = json.dumps(CUSTOMER_REST).encode()
    headers = _signed(body, shop.webhook_secret)
    with pytest.raises(WebhookRejected):
        connector.parse_webhook(headers, body.replace(b"Anna", b"Anka"))


def test_unknown_topics_are_returned_as_events_not_errors(connector: ShopifyConnector, shop: ShopifyEmulator):
    body = b'{"id": 1, "name": "acme"}'
    (event,) = connector.parse_webhook(_signed(body, shop.webhook_secret, "shop/update"), body)
    assert event.topic == "shop/update" and event.entity == "shop" and event.record == {"id": 1, "name": "acme"}


def test_customer_delete_webhook_is_a_delete_event(connector: ShopifyConnector, shop: ShopifyEmulator):
    body = b'{"id": 42}'
    (event,) = connector.parse_webhook(_signed(body, shop.webhook_secret, "customers/delete"), body)
    assert event.op == "delete" and event.record == {"id": "gid://shopify/Customer/42"}


def test_inventory_webhook_is_completed_with_sku_and_location_name(shop: ShopifyEmulator, connector: ShopifyConnector):
    shop.add_location("Magazyn Kraków")
    item = shop.add_item("KUB-TERM-350", {"Magazyn Kraków": 3})
    body = json.dumps(
        {
            "inventory_item_id": int(item.rsplit("/", 1)[1]),
            "location_id": 1001,
            "available": 9,
            "updated_at": "2026-11-20T06:00:12Z",
        }
    ).encode()
    (event,) = connector.parse_webhook(_signed(body, shop.webhook_secret, "inventory_levels/update"), body)
    assert event.entity == "stock_level"
    assert event.record["item"]["sku"] == "KUB-TERM-350" and event.record["location"]["name"] == "Magazyn Kraków"
