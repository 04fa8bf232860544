"""The emulated org as any Salesforce client sees it (simple-salesforce's own helpers, over HTTPS):
the REST resources and SOQL subset the issue lists, each against what the developer guides say
(pages cited in sandbox/salesforce/), and the fault knobs tests set. If the emulator drifted from
Salesforce, the connector's contract tests would prove nothing; these pin it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest, SalesforceResourceNotFound

from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceEmulator
from tests.salesforce.conftest import settings_for


@pytest.fixture
def sf(emulator: SalesforceEmulator) -> Iterator[Salesforce]:
    conn = SalesforceConnector("crm", settings_for(emulator))
    yield conn.sf  # signed in through the token endpoint; plain simple-salesforce from here on
    conn.close()


def names(sf: Salesforce, where: str, order: str = "LastName") -> list[str]:
    rows = sf.query_all(f"SELECT LastName FROM Contact WHERE {where} ORDER BY {order}")["records"]
    return [r["LastName"] for r in rows]


@pytest.fixture
def people(emulator: SalesforceEmulator) -> dict[str, str]:
    # the emulator's TickingClock stamps them 08:00:01, 08:00:02, … on 2025-03-01 (UTC)
    rows = [
        ("Nowak", "Ola", "1990-05-01", False),
        ("Kowalska", "Anna", "1985-01-20", True),
        ("nowicki", "Jan", None, False),
        ("Zieliński", "Ewa", "2001-12-31", True),
    ]
    return {
        last: emulator.org.create(
            "Contact", {"LastName": last, "FirstName": first, "Birthdate": born, "HasOptedOutOfEmail": out}
        )
        for last, first, born, out in rows
    }


def test_soql_comparisons_and_or_in_like_are_case_insensitive_on_text(sf, people):
    assert names(sf, "LastName = 'NOWAK'") == ["Nowak"]
    assert names(sf, "LastName != 'nowak'") == ["Kowalska", "nowicki", "Zieliński"]
    assert names(sf, "LastName IN ('kowalska', 'Zieliński')") == ["Kowalska", "Zieliński"]
    assert names(sf, "LastName NOT IN ('kowalska', 'Zieliński')") == ["Nowak", "nowicki"]
    assert names(sf, "LastName LIKE 'now%'") == ["Nowak", "nowicki"]
    assert names(sf, "LastName LIKE 'now_k'") == ["Nowak"]
    assert names(sf, "(LastName = 'Nowak' OR FirstName = 'Ewa') AND HasOptedOutOfEmail = true") == ["Zieliński"]
    assert names(sf, "LastName = 'Nowak' OR (FirstName = 'Ewa' AND HasOptedOutOfEmail = false)") == ["Nowak"]
    assert names(sf, "NOT LastName LIKE 'now%'") == ["Kowalska", "Zieliński"]


def test_soql_date_and_datetime_literals_compare_as_instants(sf, people):
    assert names(sf, "Birthdate >= 1985-01-20 AND Birthdate < 2001-12-31") == ["Kowalska", "Nowak"]
    assert names(sf, "Birthdate <= 1985-01-20") == ["Kowalska"]
    assert names(sf, "Birthdate = null") == ["nowicki"]
    # the 3rd and 4th saves, by a UTC literal and by the same instant with an offset
    assert names(sf, "SystemModstamp > 2025-03-01T08:00:02Z") == ["nowicki", "Zieliński"]
    assert names(sf, "SystemModstamp > 2025-03-01T09:00:02+01:00") == ["nowicki", "Zieliński"]
    assert names(sf, "SystemModstamp >= 2025-03-01T08:00:04.000Z") == ["Zieliński"]


def test_soql_order_by_limit_offset(sf, people):
    ordered = sf.query("SELECT LastName FROM Contact ORDER BY LastName DESC LIMIT 2")["records"]
    assert [r["LastName"] for r in ordered] == ["Zieliński", "nowicki"]  # case-insensitive order
    assert names(sf, "LastName != null", "Birthdate DESC, LastName") == ["nowicki", "Zieliński", "Nowak", "Kowalska"]
    assert names(sf, "LastName != null", "Birthdate ASC NULLS LAST") == ["Kowalska", "Nowak", "Zieliński", "nowicki"]
    page = sf.query("SELECT LastName FROM Contact ORDER BY LastName LIMIT 2 OFFSET 1")["records"]
    assert [r["LastName"] for r in page] == ["Nowak", "nowicki"]


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id FROM Contact WHERE LastName = 'a' AND FirstName = 'b' OR Email = 'c'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE LastName = 'O'Brien' OR Name LIKE '%'", "MALFORMED_QUERY"),
        ("SELECT Id FROM Contact WHERE SystemModstamp > '2025-03-01T08:00:00Z'", "INVALID_FIELD"),
        ("SELECT Id FROM Contact WHERE LastName = 3", "INVALID_FIELD"),
        ("SELECT Nope__c FROM Contact", "INVALID_FIELD"),
        ("SELECT Id FROM Nope__c", "INVALID_TYPE"),
    ],
)
def test_a_query_salesforce_refuses_is_a_400_with_its_error_body(sf, soql, code):
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.query(soql)
    assert info.value.status == 400
    (error,) = info.value.content
    assert error["errorCode"] == code and error["message"]


def test_query_pages_follow_next_records_url_and_query_all_sees_the_recycle_bin(emulator, sf):
    ids = [emulator.org.create("Contact", {"LastName": f"P{i}"}) for i in range(450)]
    emulator.org.delete("Contact", ids[0])
    first = sf.query("SELECT Id FROM Contact", headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["totalSize"] == 449 and len(first["records"]) == 200 and first["done"] is False
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/")
    everything = sf.query_all("SELECT Id, IsDeleted FROM Contact", include_deleted=True)
    assert everything["totalSize"] == 450 and len(everything["records"]) == 450
    assert [r["Id"] for r in everything["records"] if r["IsDeleted"]] == [ids[0]]


def test_sobject_rows_create_read_update_delete(sf):
    made = sf.Contact.create({"LastName": "Nowak", "Email": "ola@example.pl"})
    assert made["success"] is True and made["id"].startswith("003") and len(made["id"]) == 18
    row = sf.Contact.get(made["id"])
    assert row["attributes"]["type"] == "Contact" and row["Email"] == "ola@example.pl"
    assert sf.Contact.update(made["id"], {"FirstName": "Ola"}) == 204
    assert sf.Contact.get(made["id"])["FirstName"] == "Ola"
    assert sf.Contact.delete(made["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as info:
        sf.Contact.get(made["id"])
    assert info.value.content[0]["errorCode"] == "NOT_FOUND"


def test_upsert_by_external_id_creates_then_updates(emulator, sf):
    assert sf.Contact.upsert("Synchub_Id__c/abc-1", {"LastName": "Nowak"}) == 201
    assert sf.Contact.upsert("Synchub_Id__c/ABC-1", {"LastName": "Nowakowa"}) == 200  # case-insensitive match
    (row,) = [r for r in emulator.org.table("Contact").values() if not r["IsDeleted"]]
    assert row["LastName"] == "Nowakowa" and row["Synchub_Id__c"].lower() == "abc-1"
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.Contact.upsert("LastName/Nowak", {"FirstName": "Ola"})  # not an external id field
    assert info.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_collections_cap_at_200_and_all_or_none_rolls_back(emulator, sf):
    record = {"attributes": {"type": "Contact"}, "LastName": "X"}
    with pytest.raises(SalesforceMalformedRequest) as info:
        sf.restful("composite/sobjects", method="POST", json={"records": [record] * 201})
    assert info.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    answer = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"allOrNone": True, "records": [record, {"attributes": {"type": "Contact"}, "FirstName": "NoLast"}]},
    )
    assert [a["success"] for a in answer] == [False, False]
    assert answer[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert answer[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert emulator.org.table("Contact") == {}


def test_every_answer_carries_the_limit_header_and_an_exhausted_allocation_is_403(emulator, sf):
    emulator.daily_limit = emulator.api_used + 1
    sf.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"].used == emulator.daily_limit
    with pytest.raises(SalesforceError) as info:
        sf.query("SELECT Id FROM Contact")
    assert info.value.status == 403
    assert info.value.content == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]


def test_fault_knobs_latency_error_rate_503s_and_locks(emulator, sf):
    emulator.faults.latency = 0.3
    started = time.perf_counter()
    sf.query("SELECT Id FROM Contact")
    assert time.perf_counter() - started >= 0.3
    emulator.faults.latency = 0.0
    emulator.faults.error_rate = 1.0
    with pytest.raises(SalesforceError) as info:
        sf.query("SELECT Id FROM Contact")
    assert info.value.status == 503 and info.value.content[0]["errorCode"] == "SERVER_UNAVAILABLE"
    emulator.faults.error_rate = 0.0
    emulator.faults.fail_next(1, 500, "UNKNOWN_EXCEPTION")
    with pytest.raises(SalesforceError) as info:
        sf.query("SELECT Id FROM Contact")
    assert info.value.status == 500
    assert sf.query("SELECT Id FROM Contact")["done"] is True  # the queue is spent
    emulator.faults.lock_next = 1
    record = {"attributes": {"type": "Contact"}, "LastName": "X"}
    answer = sf.restful("composite/sobjects", method="POST", json={"records": [record, record]})
    assert answer[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW" and answer[1]["success"] is True


def test_an_expired_session_is_401_invalid_session_id(emulator, sf):
    emulator.expire_sessions()
    with pytest.raises(SalesforceError) as info:
        sf.query("SELECT Id FROM Contact")
    assert info.value.status == 401
    assert info.value.content[0]["errorCode"] == "INVALID_SESSION_ID"


def test_look_ups_by_external_id_follow_updates_and_records_put_in_directly():
    # The org indexes external-id and unique values (a save must not scan the table); the index must
    # give what a scan would: after an update changes the value, and for records set up directly.
    from sandbox.salesforce.org import Org, SaveError

    org = Org()
    first, created = org.upsert("Contact", "Synchub_Id__c", "a-1", {"LastName": "Nowak"})
    assert created
    org.update("Contact", first, {"Synchub_Id__c": "b-1"})
    second, created = org.upsert("Contact", "Synchub_Id__c", "A-1", {"LastName": "Kowalska"})
    assert created and second != first  # "a-1" is nobody's any more
    assert org.upsert("Contact", "Synchub_Id__c", "B-1", {"FirstName": "Ola"}) == (first, False)
    with pytest.raises(SaveError) as refused:  # unique: the value another record holds
        org.update("Contact", second, {"Synchub_Id__c": "b-1"})
    assert refused.value.code == "DUPLICATE_VALUE" and first in refused.value.message
    direct = dict(org.table("Contact")[first], Id="003Wz0direct0001AAA", Synchub_Id__c="c-1")
    org.table("Contact")[direct["Id"]] = direct  # set-up code that skips the save rules
    assert org.upsert("Contact", "Synchub_Id__c", "c-1", {"FirstName": "Ewa"}) == (direct["Id"], False)
    org.records = {"Contact": {first: org.table("Contact")[first]}}  # as an allOrNone rollback does
    assert org.upsert("Contact", "Synchub_Id__c", "c-1", {"LastName": "Nowa"})[1] is True
