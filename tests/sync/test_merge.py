"""The field merge's rules that need no store: first links and bookkeeping times are not conflicts."""

from __future__ import annotations

from datetime import UTC, datetime

from core.sync.merge import Side, decide
from mappings.paths import MISSING

T1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
T2 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


def test_a_first_link_that_lacks_a_value_keeps_the_golden_one_without_a_conflict():
    golden, shop = Side("+48600100200", "crm", T1, is_hub=True), Side(None, "shop", T2)
    d = decide("phones[0]", "hub", golden, shop, MISSING, "shopify")
    assert (d.value, d.take_incoming, d.conflict, d.rule) == ("+48600100200", False, False, "first-link")


def test_a_first_link_with_a_different_value_is_still_a_conflict_decided_by_its_rule():
    golden, shop = Side("Kraków", "crm", T1, is_hub=True), Side("Gdynia", "shop", T2)
    d = decide("addresses.default.city", "hub", golden, shop, MISSING, "shopify")
    assert (d.value, d.conflict, d.rule) == ("Kraków", True, "hub")


def test_a_later_clear_by_a_linked_system_is_a_change_not_a_first_link():
    golden, shop = Side("+48600100200", "crm", T1, is_hub=True), Side(None, "shop", T2)
    d = decide("phones[0]", "newest", golden, shop, "+48600100200", "shopify")
    assert (d.value, d.take_incoming, d.conflict) == (None, True, False)


def test_bookkeeping_times_take_the_earliest_creation_and_the_latest_update():
    hub_side, shop_side = Side(T2.isoformat(), "crm", T2, is_hub=True), Side(T1.isoformat(), "shop", T1)
    created = decide("created_at", "hub", hub_side, shop_side, MISSING, "shopify")
    updated = decide("updated_at", "hub", hub_side, shop_side, T2.isoformat(), "shopify")
    assert (created.value, created.conflict) == (T1.isoformat(), False)
    assert (updated.value, updated.conflict) == (T2.isoformat(), False)


def test_order_lines_that_agree_on_every_field_both_hold_are_joined_not_a_conflict():
    shop = [{"sku": "KUB-1", "quantity": 2, "unit_price": 10, "discount": 0}]
    crm = [{"sku": "KUB-1", "quantity": 2, "unit_price": 10, "total": 20, "product_id": "p1"}]
    d = decide("lines", "hub", Side(shop, "shop", T1), Side(crm, "crm", T2, is_hub=True), [], "salesforce")
    assert d.conflict is False
    joined = {"sku": "KUB-1", "quantity": 2, "unit_price": 10, "discount": 0, "total": 20, "product_id": "p1"}
    assert d.value == [joined]
    changed = [{**crm[0], "quantity": 3}]
    d2 = decide("lines", "hub", Side(shop, "shop", T1), Side(changed, "crm", T2, is_hub=True), [], "salesforce")
    assert d2.conflict is True and d2.value == changed  # a real disagreement stays one, decided by its rule


def test_an_unknown_consent_read_back_keeps_the_consent_given_and_a_withdrawal_still_wins():
    # the shop's opt-in, written to the CRM as HasOptedOutOfEmail = false, reads back as unknown
    golden, crm = Side(True, "shop", T1), Side(None, "crm", T2, is_hub=True)
    d = decide("consents.email.granted", "newest", golden, crm, True, "salesforce")
    assert (d.value, d.take_incoming, d.conflict, d.rule) == (True, False, False, "agree")
    # a withdrawal in the CRM (HasOptedOutOfEmail = true → false) is a statement and is taken
    withdrawn = decide("consents.email.granted", "newest", golden, Side(False, "crm", T2, is_hub=True), True, "x")
    assert (withdrawn.value, withdrawn.take_incoming) == (False, True)
    # other fields cleared by a system are still clears
    cleared = decide(
        "phones[0]", "newest", Side("+48600100200", "shop", T1), Side(None, "crm", T2), "+48600100200", "x"
    )
    assert cleared.value is None


def test_a_fill_only_system_fills_a_gap_and_otherwise_is_no_conflict():
    # the ERP's invoicing state only fills an order nobody else described
    paid, erp = Side("paid", "shop", T1), Side("pending", "erp", T2)
    kept = decide("payment_status", "fill", paid, erp, MISSING, "tryton")
    assert (kept.value, kept.take_incoming, kept.conflict) == ("paid", False, False)
    filled = decide("payment_status", "fill", Side(None, "shop", T1), erp, MISSING, "tryton")
    assert (filled.value, filled.take_incoming, filled.conflict) == ("pending", True, False)


def test_an_order_status_moves_forward_only_under_progress():
    shipped, erp = Side("shipped", "shop", T2), Side("processing", "erp", T2)
    stale = decide("status", "progress", shipped, erp, MISSING, "tryton")
    assert (stale.value, stale.take_incoming, stale.conflict) == ("shipped", False, False)
    done = decide("status", "progress", shipped, Side("completed", "erp", T1), "processing", "tryton")
    assert (done.value, done.take_incoming, done.conflict) == ("completed", True, False)
    cancelled = decide("status", "progress", Side("processing", "shop", T1), Side("cancelled", "erp", T2), None, "x")
    assert cancelled.value == "cancelled"
    ended = decide("status", "progress", Side("cancelled", "shop", T1), Side("processing", "erp", T2), None, "x")
    assert ended.value == "cancelled"
    # a value that is no stage falls back to the newest statement
    custom = decide(
        "status", "progress", Side("on_hold", "crm", T1, is_hub=True), Side("processing", "erp", T2), "x", "y"
    )
    assert custom.value == "processing"
