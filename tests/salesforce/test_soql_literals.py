"""The SOQL literal helper, and the proof that matters: a hostile name cannot change a query's
meaning against a real SOQL parser (the emulator's)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.salesforce.soql import ident, like, literal, soql
from core.connector import WriteRequest
from sandbox.salesforce.soql import SoqlError, parse

HOSTILE = "O'Brien' OR Name LIKE '%"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("O'Brien", r"'O\'Brien'"),
        ("back\\slash", r"'back\\slash'"),
        ('say "hi"', r"'say \"hi\"'"),
        ("line\nbreak\ttab", r"'line\nbreak\ttab'"),
        ("100%_sure", "'100%_sure'"),
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (Decimal("9.50"), "9.50"),
        (1e-05, "0.00001"),
        (Decimal("1E+2"), "100"),
        (2.5, "2.5"),
        (date(2026, 11, 20), "2026-11-20"),
        (datetime(2026, 11, 20, 10, 15, tzinfo=timezone(timedelta(hours=1))), "2026-11-20T09:15:00Z"),
        (["a'", "b"], r"('a\'', 'b')"),
    ],
)
def test_literal(value, expected):
    assert literal(value) == expected


def test_like_escapes_wildcards_and_quotes():
    assert like("50%_off's", prefix=True) == r"'50\%\_off\'s%'"


def test_bad_inputs_are_refused_not_guessed():
    with pytest.raises(ValueError):
        literal(datetime(2026, 1, 1))  # naive: which zone?
    with pytest.raises(ValueError):
        literal([])
    with pytest.raises(ValueError):
        literal(float("nan"))
    with pytest.raises(ValueError):
        literal(Decimal("Infinity"))
    with pytest.raises(ValueError):
        ident("Name; DELETE")
    with pytest.raises(ValueError):
        soql("SELECT Id FROM Contact WHERE Email = {}")


def test_a_quoted_hostile_name_stays_one_value_for_a_soql_parser():
    # Given a name that would widen the query if it were concatenated
    q = parse(soql("SELECT Id FROM Contact WHERE LastName = {}", HOSTILE))
    # Then the parser sees one equality on LastName with the whole text as its value
    assert q.where.field == "LastName" and q.where.op == "=" and q.where.value == HOSTILE
    # while the concatenated form is not even a valid query
    with pytest.raises(SoqlError):
        parse(f"SELECT Id FROM Contact WHERE LastName = '{HOSTILE}'")


def test_a_hostile_external_id_cannot_widen_a_delete_lookup(emulator, connector):
    # Given two contacts, one named like the hostile text's target
    emulator.org.create("Contact", {"LastName": "Kowalski", "Synchub_Id__c": "keep-1"})
    emulator.org.create("Contact", {"LastName": "O'Brien", "Synchub_Id__c": HOSTILE})
    # When the connector deletes by the hostile canonical id (looked up with SOQL IN (...))
    (result,) = connector.write("customer", [WriteRequest(HOSTILE, None, {}, op="delete")])
    # Then exactly that record is gone; the other is untouched
    assert result.ok
    live = {r["Synchub_Id__c"] for r in emulator.org.table("Contact").values() if not r["IsDeleted"]}
    assert live == {"keep-1"}


def test_a_hostile_filter_value_reads_nothing_extra(emulator):
    from connectors.salesforce import SalesforceConnector
    from tests.salesforce.conftest import settings_for

    emulator.org.create("Contact", {"LastName": "Kowalski"})
    conn = SalesforceConnector("crm", settings_for(emulator, filters={"customer": {"LastName": HOSTILE}}))
    page = conn.read_changes("customer", None)
    assert page.records == []
    emulator.org.create("Contact", {"LastName": HOSTILE})
    page = conn.read_changes("customer", None)
    assert [r.data["LastName"] for r in page.records] == [HOSTILE]
    conn.close()


def test_the_emulator_parser_reads_order_as_an_object_name():
    q = parse("SELECT Id FROM Order ORDER BY SystemModstamp ASC LIMIT 1")
    assert q.obj == "Order" and q.order == [("SystemModstamp", False, False)] and q.limit == 1
