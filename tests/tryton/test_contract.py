"""Contract tests against a real Tryton 8.2 server: the hub (CRM) and Tryton stay in step.

Each test starts its own trytond from the cached template (sandbox/tryton/server.py).
"""

from __future__ import annotations

from decimal import Decimal

import httpx

from sandbox.tryton.erp import Erp
from tests.tryton.deployment import tryton_deployment

ANNA = {
    "FirstName": "Anna",
    "LastName": "Kowalczyk",
    "Email": "anna.kowalczyk@example.pl",
    "MobilePhone": "+48501002003",
    "MailingStreet": "ul. Długa 5",
    "MailingPostalCode": "31-147",
    "MailingCity": "Kraków",
    "MailingCountryCode": "PL",
}


class LoseFirstCreateAnswer(httpx.HTTPTransport):
    """The network drops the answer to the first party create — after Tryton committed it."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if not self.dropped and b'"model.party.party.create"' in request.content:
            response.read()
            self.dropped += 1
            raise httpx.ReadError("connection reset after the server answered", request=request)
        return response


def test_a_hub_customer_becomes_one_party_even_when_the_create_answer_is_lost(sqlite_state, tryton, erp: Erp):
    # Given a deployment whose network loses the answer to the first party create
    lossy = LoseFirstCreateAnswer()
    d = tryton_deployment(sqlite_state, tryton, transport=lossy)
    d.crm.system.put("customer", ANNA)

    # When the sync runs, fails on the lost answer, and retries after the back-off
    d.drain()
    assert lossy.dropped == 1, d.dead()
    d.clock.advance(3600)
    d.drain()

    # Then Tryton holds exactly one party for the customer, with its contacts and address
    cid, _ = d.customer("anna.kowalczyk@example.pl")
    parties = erp.search("party.party", [["code", "=", cid]], ["id", "name"])
    assert len(parties) == 1, parties
    assert parties[0]["name"] == "Anna Kowalczyk"
    assert d.native_id("customer", "erp", cid) == str(parties[0]["id"])
    mechanisms = erp.search("party.contact_mechanism", [["party", "=", parties[0]["id"]]], ["type", "value"])
    assert sorted((m["type"], m["value"]) for m in mechanisms) == [
        ("email", "anna.kowalczyk@example.pl"),
        ("mobile", "+48501002003"),
    ]
    (address,) = erp.search("party.address", [["party", "=", parties[0]["id"]]], ["street", "city", "postal_code"])
    assert (address["street"], address["city"], address["postal_code"]) == ("ul. Długa 5", "Kraków", "31-147")

    # And writing the same customer again (a replay) still leaves one party, and echoes nothing
    writes_before = len(d.crm.writes)
    d.crm.system.put("customer", ANNA, native_id=d.native_id("customer", "crm", cid))
    d.drain()
    assert len(erp.search("party.party", [["code", "=", cid]], ["id"])) == 1
    assert len(d.crm.writes) == writes_before


def test_an_email_changed_in_tryton_reaches_the_hub_though_the_party_is_untouched(sqlite_state, tryton, erp: Erp):
    # Given a customer synced to Tryton
    d = tryton_deployment(sqlite_state, tryton)
    d.crm.system.put("customer", ANNA)
    d.drain()
    cid, _ = d.customer("anna.kowalczyk@example.pl")
    party = int(d.native_id("customer", "erp", cid) or 0)
    party_stamp = erp.read("party.party", party, ["write_date"])["write_date"]

    # When a Tryton user corrects only the e-mail (party.write_date does not move)
    (email,) = erp.search("party.contact_mechanism", [["party", "=", party], ["type", "=", "email"]], ["id"])
    erp.rpc.model("party.contact_mechanism", "write", [email["id"]], {"value": "anna.k@example.pl"})
    assert erp.read("party.party", party, ["write_date"])["write_date"] == party_stamp
    d.drain()

    # Then the hub has the new e-mail
    _, golden = d.customer("anna.k@example.pl")
    assert golden["emails"] == ["anna.k@example.pl"]
    crm_id = d.native_id("customer", "crm", cid)
    assert d.crm.system.get("customer", crm_id or "")["Email"] == "anna.k@example.pl"


def test_stock_received_in_tryton_reaches_the_hub_and_the_shop_and_tryton_wins_a_conflict(
    sqlite_state, tryton, erp: Erp
):
    # Given the opening stock synced: 10 mugs in the Kraków warehouse, published to the shop
    d = tryton_deployment(sqlite_state, tryton)
    d.drain()
    stock = {g["sku"]: (cid, g) for cid, g in d.goldens("stock_level")}
    cid, mug = stock["KUBEK-01"]
    assert (mug["location"], mug["available"], mug["on_hand"]) == ("WH-KRK", 10, 10)
    shop_id = d.native_id("stock_level", "shop", cid)
    assert shop_id is not None

    # When the shop's figure is edited by hand (99) while Tryton receives 5 more mugs
    d.shop.system.edit("stock_level", shop_id, quantities=[{"name": "available", "quantity": 99}])
    erp.receive("KUBEK-01", 5)
    d.drain()

    # Then the hub holds Tryton's 15 (the ERP owns stock), and the shop is set back to it
    stock = {g["sku"]: g for _, g in d.goldens("stock_level")}
    assert stock["KUBEK-01"]["available"] == 15
    assert erp.quantity("KUBEK-01") == 15
    shop_row = d.shop.system.get("stock_level", shop_id) or {}
    assert {q["name"]: q["quantity"] for q in shop_row["quantities"]}["available"] == 15
    assert stock["KOC-02"]["available"] == 10  # untouched products stay as they were


def test_a_pos_sale_joins_the_customers_history_in_the_hub_as_a_store_touchpoint(sqlite_state, tryton, erp: Erp):
    # Given a customer known to the hub and to Tryton
    d = tryton_deployment(sqlite_state, tryton)
    d.crm.system.put("customer", ANNA)
    d.drain()
    cid, _ = d.customer("anna.kowalczyk@example.pl")
    party = int(d.native_id("customer", "erp", cid) or 0)

    # When she buys two mugs at the till, and an anonymous customer buys tea
    ticket = erp.pos_sale(party, [("KUBEK-01", 2, "30.00")])
    erp.pos_sale(None, [("HERB-03", 1, "19.00")])
    number = erp.read("sale.point.sale", ticket, ["number"])["number"]
    d.drain()

    # Then the hub's timeline of the customer shows a store purchase with the ticket number
    crm_contact = d.native_id("customer", "crm", cid)
    tasks = list(d.crm.system.live("touchpoint").values())
    hers = [t for t in tasks if t.get("WhoId") == crm_contact]
    assert len(hers) == 1, tasks
    assert hers[0]["Channel__c"] == "store"
    assert hers[0]["Touchpoint_Kind__c"] == "purchase"
    assert hers[0]["Source_Reference__c"] == number
    assert "60.00" in hers[0]["Subject"]
    # and the anonymous ticket is a store touchpoint with nobody attached
    assert len(tasks) == 2
    assert [t.get("WhoId") for t in tasks if t is not hers[0]] == [None]


def test_a_case_becomes_a_complaint_and_its_state_in_tryton_comes_back(sqlite_state, tryton, erp: Erp):
    # Given a customer synced everywhere and a case opened for her in the CRM
    d = tryton_deployment(sqlite_state, tryton)
    d.crm.system.put("customer", ANNA)
    d.drain()
    customer, _ = d.customer("anna.kowalczyk@example.pl")
    contact = d.native_id("customer", "crm", customer)
    case = d.crm.system.put(
        "complaint",
        {"Subject": "Pęknięty kubek", "Description": "Kubek pękł po pierwszym myciu.", "Status": "New",
         "ContactId": contact},
    )  # fmt: skip

    # When the sync runs
    d.drain()

    # Then Tryton has one draft complaint for her party, keyed by the canonical id
    ((cid, _),) = d.goldens("complaint")
    (complaint,) = erp.search("sale.complaint", [["reference", "=", cid]], ["id", "customer", "state", "description"])
    assert complaint["customer"] == int(d.native_id("customer", "erp", customer) or 0)
    assert (complaint["state"], complaint["description"]) == ("draft", "Kubek pękł po pierwszym myciu.")

    # When the ERP moves it on (waiting for the customer, then approved and so done)
    erp.button("sale.complaint", "wait", complaint["id"])
    d.drain()
    assert d.crm.system.get("complaint", case)["Status"] == "On Hold"
    erp.button("sale.complaint", "approve", complaint["id"])
    d.drain()

    # Then (an approved complaint with no actions left is done at once in Tryton) the case in the
    # CRM is resolved, and Tryton still holds one complaint
    assert erp.read("sale.complaint", complaint["id"], ["state"])["state"] == "done"
    assert d.crm.system.get("complaint", case)["Status"] == "Resolved"
    assert len(erp.search("sale.complaint", [], ["id"])) == 1


def test_a_web_order_becomes_one_confirmed_sale_and_its_progress_comes_back(sqlite_state, tryton, erp: Erp):
    # Given a customer synced everywhere and her web order in the CRM
    d = tryton_deployment(sqlite_state, tryton)
    d.crm.system.put("customer", ANNA)
    d.drain()
    customer, _ = d.customer("anna.kowalczyk@example.pl")
    order = d.crm.system.put(
        "order",
        {
            "Channel_Order_Number__c": "#1050",
            "BillToContactId": d.native_id("customer", "crm", customer),
            "Status": "Activated",
            "CurrencyIsoCode": "PLN",
            "Placed_At__c": "2026-11-23T10:15:00Z",
            "ShippingStreet": "ul. Karmelicka 32/3",
            "ShippingPostalCode": "31-128",
            "ShippingCity": "Kraków",
            "ShippingCountryCode": "PL",
            "OrderItems": {
                "records": [
                    {"Sku__c": "KOC-02", "Description": "Koc wełniany", "Quantity": 1, "UnitPrice": 200.00},
                    {"Sku__c": "KUBEK-01", "Description": "Kubek ceramiczny", "Quantity": 2, "UnitPrice": 30.00},
                ]
            },
        },
    )

    # When the sync runs (twice: a replay must not make a second sale)
    d.drain()
    d.crm.system.edit("order", order, Description="Proszę dzwonić domofonem.")
    d.drain()

    assert not d.dead(), d.dead()
    # Then Tryton has one confirmed sale for her party: the shop's gross prices went in net, and
    # Tryton's own 23 % VAT makes the order's gross total again
    (sale,) = erp.search(
        "sale.sale", [["reference", "=", "#1050"]], ["id", "party", "state", "untaxed_amount", "total_amount"]
    )
    assert sale["party"] == int(d.native_id("customer", "erp", customer) or 0)
    assert sale["state"] == "processing", sale  # confirmed, then processed at once: shipment planned
    assert str(sale["untaxed_amount"]) == "211.38"
    assert str(sale["total_amount"]) == "260.00"  # 200.00 + 2 × 30.00: what the customer paid
    lines = erp.search("sale.line", [["sale", "=", sale["id"]]], ["product", "quantity"])
    assert sorted((ln["product"], ln["quantity"]) for ln in lines) == [(1, 2.0), (2, 1.0)]

    # And the ERP's progress is the order's status in the CRM
    assert d.crm.system.get("order", order)["Status"] == "Processing"
    assert not [x for x in d.dead() if x[1] == "order"], d.dead()


def test_a_complaint_keyed_in_tryton_becomes_a_case_and_the_crms_edit_goes_back(sqlite_state, tryton, erp: Erp):
    # Given a customer synced everywhere, and a complaint a clerk keys in Tryton for her
    d = tryton_deployment(sqlite_state, tryton)
    d.crm.system.put("customer", ANNA)
    d.drain()
    customer, _ = d.customer("anna.kowalczyk@example.pl")
    party = int(d.native_id("customer", "erp", customer) or 0)
    (complaint,) = erp.rpc.model(
        "sale.complaint",
        "create",
        [{"customer": party, "type": tryton.ids["complaint_type"], "description": "Koc zaciąga się."}],
    )

    # When the sync runs
    d.drain()

    # Then the CRM has a new case for her contact
    ((cid, _),) = d.goldens("complaint")
    case = d.native_id("complaint", "crm", cid) or ""
    crm_case = d.crm.system.get("complaint", case) or {}
    assert crm_case["ContactId"] == d.native_id("customer", "crm", customer)
    assert (crm_case["Status"], crm_case["Description"]) == ("New", "Koc zaciąga się.")

    # When an agent adds to the description in the CRM
    d.crm.system.edit("complaint", case, Description="Koc zaciąga się; klientka prosi o wymianę.")
    d.drain()

    # Then Tryton's complaint has it, now keyed by the canonical id, and is still the only one
    row = erp.read("sale.complaint", complaint, ["description", "reference"])
    assert row == {"id": complaint, "description": "Koc zaciąga się; klientka prosi o wymianę.", "reference": cid}
    assert len(erp.search("sale.complaint", [], ["id"])) == 1
    assert not d.dead(), d.dead()


def test_a_price_changed_in_tryton_wins_over_an_edit_in_the_crm(sqlite_state, tryton, erp: Erp):
    # Given the products synced to the CRM
    d = tryton_deployment(sqlite_state, tryton)
    d.drain()
    products = {g["sku"]: cid for cid, g in d.goldens("product")}
    product2 = d.native_id("product", "crm", products["KUBEK-01"]) or ""
    assert str((d.crm.system.get("product", product2) or {})["Price__c"]) == "24.39"

    # When someone edits the price in the CRM while the ERP changes the list price
    d.crm.system.edit("product", product2, Price__c="1.00")
    (template,) = erp.search("product.product", [["code", "=", "KUBEK-01"]], ["template"])
    erp.rpc.model("product.template", "write", [template["template"]], {"list_price": Decimal("25.00")})
    d.drain()

    # Then the ERP's price is the golden price and the CRM is set back to it
    golden = dict(d.goldens("product"))[products["KUBEK-01"]]
    assert str(golden["price"]) == "25.00"
    assert str((d.crm.system.get("product", product2) or {})["Price__c"]) == "25.00"


def test_erasure_leaves_an_archived_party_without_personal_data(sqlite_state, tryton, erp: Erp):
    # Given a customer synced to Tryton
    d = tryton_deployment(sqlite_state, tryton)
    d.crm.system.put("customer", ANNA)
    d.drain()
    customer, _ = d.customer("anna.kowalczyk@example.pl")
    party = int(d.native_id("customer", "erp", customer) or 0)

    # When she asks to be forgotten
    d.pipeline.erase("customer", customer)
    d.drain()

    # Then Tryton keeps only an archived shell of the party (documents may still point at it)
    assert not d.dead(), d.dead()
    row = erp.search("party.party", [["id", "=", party]], ["name", "code", "active"])[0]
    assert (row["name"], bool(row["active"])) == ("(erased)", False)
    assert row["code"] == customer  # a random id, not personal data: Tryton keeps a code read-only
    assert erp.search("party.contact_mechanism", [["party", "=", party]], ["id"]) == []
    assert erp.search("party.address", [["party", "=", party]], ["id"]) == []
