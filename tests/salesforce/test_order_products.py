"""Orders reach the CRM with their products: OrderItems on the standard price book, written in a few
calls for a whole batch, idempotent on retry, and read back as the order's lines."""

from __future__ import annotations

from connectors.salesforce import SalesforceConnector
from core.connector import WriteRequest
from sandbox.salesforce import SalesforceEmulator


def order(n: int, contact: str, lines: list[tuple[str, int, float]]) -> WriteRequest:
    items = [
        {"Sku__c": sku, "Quantity": qty, "UnitPrice": price, "Description": sku.lower()} for sku, qty, price in lines
    ]
    payload = {
        "Channel_Order_Number__c": f"#{1000 + n}",
        "BillToContactId": contact,
        "EffectiveDate": "2026-11-20",
        "OrderItems": {"records": items},
    }
    return WriteRequest(f"00000000-0000-4000-9000-{n:012d}", None, payload)


def items_of(emu: SalesforceEmulator, order_id: str) -> list[dict]:
    rows = [r for r in emu.org.table("OrderItem").values() if r["OrderId"] == order_id and not r["IsDeleted"]]
    return sorted(rows, key=lambda r: r["Synchub_Id__c"])


def seed(emu: SalesforceEmulator) -> str:
    for code, price in (("KUB-0001", 39.9), ("KOC-0002", 249.0)):
        emu.org.create("Product2", {"Name": code, "ProductCode": code, "Price__c": price})
    account = emu.org.create("Account", {"Name": "Ola Nowak"})
    return emu.org.create("Contact", {"LastName": "Nowak", "AccountId": account})


def test_a_batch_of_orders_gets_its_products_in_a_few_calls_and_reads_back_as_lines(emulator, connector):
    contact = seed(emulator)
    batch = [order(n, contact, [("KUB-0001", 2, 39.9), ("KOC-0002", 1, 249.0)]) for n in range(50)]
    before = connector.calls
    results = connector.write("order", batch)
    calls = connector.calls - before
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    # first batch: price book, contacts' accounts, orders, existing products, entries, Product2, new entries, items
    assert calls == 8, calls
    first = results[0].native_id
    assert first is not None
    items = items_of(emulator, first)
    assert [(i["Sku__c"], i["Quantity"], i["TotalPrice"]) for i in items] == [
        ("KUB-0001", 2, 79.8),
        ("KOC-0002", 1, 249.0),
    ]
    assert emulator.org.table("Order")[first]["TotalAmount"] == 328.8
    assert len(emulator.org.table("OrderItem")) == 100
    # a later batch of the same products: accounts, orders, existing products, items — whatever its size
    before = connector.calls
    assert all(
        r.ok for r in connector.write("order", [order(n, contact, [("KUB-0001", 1, 39.9)]) for n in range(50, 250)])
    )
    assert connector.calls - before == 4  # 200 orders: their accounts, the orders, their products (read, write)
    # read back: the order's lines come with it (the OrderItems sub-query)
    page = connector.read_changes("order", None)
    mine = next(r for r in page.records if r.native_id == first)
    assert [line["Sku__c"] for line in mine.data["OrderItems"]["records"]] == ["KUB-0001", "KOC-0002"]


def test_a_retried_batch_writes_no_product_twice_and_a_removed_line_is_deleted(emulator, connector):
    contact = seed(emulator)
    req = order(1, contact, [("KUB-0001", 2, 39.9), ("KOC-0002", 1, 249.0)])
    (first,) = connector.write("order", [req])
    (again,) = connector.write("order", [req])  # the answer was lost: the workers send it again
    assert first.native_id == again.native_id
    assert len(items_of(emulator, str(first.native_id))) == 2
    # the customer changes her mind: one mug, no blanket
    changed = order(1, contact, [("KUB-0001", 1, 39.9)])
    (third,) = connector.write("order", [WriteRequest(req.canonical_id, first.native_id, changed.payload)])
    assert third.ok
    items = items_of(emulator, str(first.native_id))
    assert [(i["Sku__c"], i["Quantity"]) for i in items] == [("KUB-0001", 1)]
    assert emulator.org.table("Order")[str(first.native_id)]["TotalAmount"] == 39.9


def test_an_order_with_an_unknown_sku_is_refused_with_the_reason_and_the_others_go_through(emulator, connector):
    contact = seed(emulator)
    good, bad = order(1, contact, [("KUB-0001", 1, 39.9)]), order(2, contact, [("NOPE-9", 1, 5.0)])
    ok, refused = connector.write("order", [good, bad])
    assert ok.ok and not refused.ok
    assert "no product with this SKU" in str(refused.error) and "NOPE-9" in str(refused.error)


def test_the_emulator_refuses_products_on_an_order_without_a_price_book(emulator):
    contact = seed(emulator)
    account = emulator.org.table("Contact")[contact]["AccountId"]
    order_id = emulator.org.create("Order", {"AccountId": account, "EffectiveDate": "2026-11-20"})
    product = next(iter(emulator.org.table("Product2")))
    entry = emulator.org.create(
        "PricebookEntry", {"Pricebook2Id": emulator.org.standard_pricebook(), "Product2Id": product, "UnitPrice": 1}
    )
    from sandbox.salesforce.org import SaveError

    try:
        emulator.org.create(
            "OrderItem", {"OrderId": order_id, "PricebookEntryId": entry, "Quantity": 1, "UnitPrice": 1}
        )
    except SaveError as exc:
        assert exc.code == "FIELD_INTEGRITY_EXCEPTION" and "Price Book Not Set" in exc.message
    else:
        raise AssertionError("an order product was accepted on an order without a price book")


def test_connector_fixture_is_the_salesforce_connector(connector):
    assert isinstance(connector, SalesforceConnector)
