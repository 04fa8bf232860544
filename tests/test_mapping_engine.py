"""The mapping engine: compile a mapping, map records both ways, and report errors precisely."""

from __future__ import annotations

import textwrap
from decimal import Decimal

import pytest

from mappings.errors import RecordMappingError
from mappings.loader import check_text
from mappings.paths import parse_path, set_path

ORDER = textwrap.dedent(
    """\
    system: shopify
    entities:
      order:
        native: Order
        id: id
        updated_at: updatedAt
        fields:
          - canonical: email
            native: email
            transform: strip | email
          - canonical: total
            native: totalPriceSet.shopMoney.amount
            transform: money
          - canonical: payment_status
            native: displayFinancialStatus
            transform:
              - map: {PAID: paid, PENDING: pending, REFUNDED: refunded}
          - canonical: lines[].sku
            native: lineItems.nodes[].sku
            transform: strip
            required: true
          - canonical: lines[].quantity
            native: lineItems.nodes[].quantity
            transform: decimal
          - canonical: delivery.locker_point_id
            native: customAttributes[key=inpost_point].value
          - canonical: tags
            native: tags
          - canonical: note
            native: note
            transform: default("none")
    """
)

RECORD = {
    "id": "gid://shopify/Order/1",
    "updatedAt": "2026-11-20T09:15:00Z",
    "email": "  Anna.Nowak@Example.PL ",
    "totalPriceSet": {"shopMoney": {"amount": "119.9"}},
    "displayFinancialStatus": "PAID",
    "lineItems": {"nodes": [{"sku": " SKU-1 ", "quantity": 2}, {"sku": "SKU-2", "quantity": "1"}]},
    "customAttributes": [{"key": "gift", "value": "no"}, {"key": "inpost_point", "value": "KRA010"}],
    "tags": ["vip"],
}


def compile_order(text: str = ORDER):
    mapping, issues = check_text(text, "order.yaml")
    assert not issues, issues
    assert mapping is not None
    return mapping.entities["order"]


def test_native_to_canonical_covers_nested_arrays_selectors_and_conversions():
    # Given a compiled mapping
    order = compile_order()
    # When a Shopify-shaped order is mapped in
    canonical = order.to_canonical(RECORD)
    # Then every field lands at its canonical path, converted
    assert canonical == {
        "email": "anna.nowak@example.pl",
        "total": Decimal("119.90"),
        "payment_status": "paid",
        "lines": [{"sku": "SKU-1", "quantity": Decimal(2)}, {"sku": "SKU-2", "quantity": Decimal(1)}],
        "delivery": {"locker_point_id": "KRA010"},
        "tags": ["vip"],
        "note": "none",
    }
    assert order.native_id(RECORD) == "gid://shopify/Order/1"
    ts = order.source_timestamp(RECORD)
    assert ts is not None and ts.isoformat() == "2026-11-20T09:15:00+00:00"


def test_canonical_to_native_inverts_the_same_declaration():
    order = compile_order()
    native = order.to_native(order.to_canonical(RECORD))
    assert native["totalPriceSet"] == {"shopMoney": {"amount": "119.90"}}
    assert native["displayFinancialStatus"] == "PAID"
    assert native["lineItems"]["nodes"] == [{"sku": "SKU-1", "quantity": "2"}, {"sku": "SKU-2", "quantity": "1"}]
    assert native["customAttributes"] == [{"key": "inpost_point", "value": "KRA010"}]
    # and mapping it in again gives the same canonical record (stable round trip)
    assert order.to_canonical(native) == order.to_canonical(RECORD)


def test_absent_means_unknown_and_null_means_cleared():
    order = compile_order()
    canonical = order.to_canonical({"id": "1", "email": None})
    assert canonical == {"email": None, "note": "none"}
    assert "total" not in canonical  # absent in the source: left alone, not cleared


def test_a_null_parent_clears_the_leaf():
    order = compile_order()
    assert order.to_canonical({"id": "1", "totalPriceSet": None})["total"] is None


def test_failed_fields_are_reported_with_entity_field_path_value_and_transform():
    order = compile_order()
    record = {**RECORD, "email": "not-an-email", "displayFinancialStatus": "VOIDED"}
    record["lineItems"] = {"nodes": [{"sku": "A", "quantity": 1}, {"sku": "B", "quantity": "two"}]}
    with pytest.raises(RecordMappingError) as caught:
        order.to_canonical(record)
    errors = {e.field: e for e in caught.value.errors}
    assert set(errors) == {"email", "payment_status", "lines[1].quantity"}
    assert errors["email"].transform == "email"
    assert errors["email"].value == "not-an-email"
    assert errors["email"].native_path == "email"
    assert errors["lines[1].quantity"].native_path == "lineItems.nodes[1].quantity"
    assert errors["lines[1].quantity"].value == "two"
    assert errors["lines[1].quantity"].transform == "decimal"
    assert "VOIDED" in errors["payment_status"].message
    # the rest of the record still mapped, so an operator sees what did work
    assert caught.value.partial["total"] == Decimal("119.90")


def test_required_field_missing_is_an_error_not_a_silent_gap():
    order = compile_order()
    with pytest.raises(RecordMappingError) as caught:
        order.to_canonical({"id": "1", "lineItems": {"nodes": [{"quantity": 1}]}})
    (error,) = caught.value.errors
    assert error.field == "lines[0].sku"
    assert "required" in error.message


def test_wrong_shape_is_a_field_error():
    order = compile_order()
    with pytest.raises(RecordMappingError) as caught:
        order.to_canonical({"id": "1", "lineItems": {"nodes": "oops"}})
    assert "expected an array" in caught.value.errors[0].message


def test_generated_source_has_no_interpretation_of_the_yaml():
    order = compile_order()
    # one function per direction; the paths are inlined as dictionary reads
    assert "rec.get('totalPriceSet', _M)" in order.source_in
    assert "for " in order.source_in  # the lines array is one loop for all its fields


def test_keys_with_quotes_cannot_inject_code():
    text = ORDER.replace("native: note\n", 'native: "n\'o)te"\n')
    # the path grammar refuses such a key before any code is generated
    mapping, issues = check_text(text, "order.yaml")
    assert mapping is None
    assert any("bad native path" in i.message for i in issues)


def test_scalar_arrays_map_element_by_element():
    text = textwrap.dedent(
        """\
        system: shopify
        entities:
          customer:
            native: Customer
            id: id
            fields:
              - canonical: emails[]
                native: emails[]
                transform: email
        """
    )
    mapping, issues = check_text(text, "c.yaml")
    assert mapping is not None, issues
    customer = mapping.entities["customer"]
    assert customer.to_canonical({"emails": [" A@B.PL", "c@d.pl"]}) == {"emails": ["a@b.pl", "c@d.pl"]}
    assert customer.to_native({"emails": ["a@b.pl"]}) == {"emails": ["a@b.pl"]}


def test_template_builds_an_out_field_from_the_whole_record():
    text = textwrap.dedent(
        """\
        system: tryton
        entities:
          customer:
            native: party.party
            id: id
            fields:
              - canonical: first_name
                native: name
                direction: in
                transform: split_name(part="first")
              - canonical: last_name
                native: name
                direction: in
                transform: split_name(part="last")
              - native: name
                direction: out
                transform: template("{first_name} {last_name}")
        """
    )
    mapping, issues = check_text(text, "t.yaml")
    assert mapping is not None, issues
    party = mapping.entities["customer"]
    canonical = party.to_canonical({"name": "Jan Kowalski"})
    assert canonical == {"first_name": "Jan", "last_name": "Kowalski"}
    assert party.to_native(canonical) == {"name": "Jan Kowalski"}


def test_paths_helpers_build_what_the_engine_reads():
    record: dict = {}
    set_path(record, parse_path("a.b[].c"), 1)
    set_path(record, parse_path("x[key=k].value"), "v")
    assert record == {"a": {"b": [{"c": 1}]}, "x": [{"key": "k", "value": "v"}]}
