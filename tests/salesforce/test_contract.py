"""The Salesforce connector against the emulated org, one behaviour per test."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from connectors.salesforce import SalesforceConnector
from core.connector import WriteRequest, registry
from core.errors import ConfigError, RateLimited, RecordRejected, TransientError
from sandbox.salesforce import SalesforceEmulator, ValidationRule
from tests.salesforce.conftest import TickingClock, settings_for


def contact(i: int, **extra):
    return WriteRequest(
        f"00000000-0000-4000-8000-{i:012d}", None, {"FirstName": "Ola", "LastName": f"Nowak{i}", **extra}
    )


def live_contacts(emu: SalesforceEmulator) -> dict[str, dict]:
    return {r["Synchub_Id__c"]: r for r in emu.org.table("Contact").values() if not r["IsDeleted"]}


def test_the_registry_finds_the_connector():
    assert registry.get("salesforce") is SalesforceConnector


@pytest.mark.parametrize("auth", ["jwt", "client_credentials", "password"])
def test_each_grant_type_signs_in(emulator, auth):
    conn = SalesforceConnector("crm", settings_for(emulator, auth))
    (result,) = conn.write("customer", [contact(1)])
    assert result.ok and result.native_id in emulator.org.table("Contact")
    assert conn.token_fetches == 1 and emulator.token_requests == 1
    conn.close()


def test_a_jwt_signed_with_another_key_is_refused_as_config_error(emulator):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    conn = SalesforceConnector("crm", settings_for(emulator, "jwt", private_key=SecretStr(other.decode())))
    with pytest.raises(ConfigError, match="invalid assertion") as info:
        conn.read_changes("customer", None)
    assert "PRIVATE KEY" not in str(info.value)


def test_a_wrong_password_is_refused_without_echoing_it(emulator):
    conn = SalesforceConnector("crm", settings_for(emulator, "password", password=SecretStr("hunter2")))
    with pytest.raises(ConfigError, match="authentication failure") as info:
        conn.read_changes("customer", None)
    assert "hunter2" not in str(info.value)


def test_a_batch_of_200_with_3_invalid_records_writes_197_in_one_call(emulator, connector):
    # Given a validation rule and 3 records that break the org's rules in different ways
    emulator.add_rule(
        "Contact",
        ValidationRule(lambda r: (r.get("Email") or "").endswith("@blocked.test"), "Email domain is blocked", "Email"),
    )
    batch = [contact(i) for i in range(200)]
    batch[10] = WriteRequest(batch[10].canonical_id, None, {"FirstName": "NoLastName"})
    batch[50] = contact(50, LastName="X" * 81)
    batch[150] = contact(150, Email="spam@blocked.test")
    # When the batch is written
    results = connector.write("customer", batch)
    # Then 197 are in the org, in one API call (plus none for login), and 3 carry Salesforce's reasons
    assert connector.calls == 1
    assert len(live_contacts(emulator)) == 197 and sum(r.ok for r in results) == 197
    errors = {i: r.error for i, r in enumerate(results) if not r.ok}
    assert set(errors) == {10, 50, 150}
    assert all(isinstance(e, RecordRejected) for e in errors.values())
    assert errors[10].code == "REQUIRED_FIELD_MISSING" and "Required fields are missing: [LastName]" in str(errors[10])
    assert errors[50].code == "STRING_TOO_LONG" and "max length=80" in str(errors[50])
    assert errors[150].code == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and "Email domain is blocked" in str(errors[150])


def test_a_duplicate_unique_value_is_a_permanent_rejection(emulator, connector):
    connector.write("customer", [contact(1, Loyalty_Id__c="KL-1")])
    (result,) = connector.write("customer", [contact(2, Loyalty_Id__c="kl-1")])
    assert isinstance(result.error, RecordRejected) and result.error.code == "DUPLICATE_VALUE"


def test_upsert_by_external_id_updates_instead_of_duplicating(emulator, connector):
    (first,) = connector.write("customer", [contact(7)])
    (again,) = connector.write("customer", [contact(7, FirstName="Ala")])
    assert first.native_id == again.native_id
    assert len(live_contacts(emulator)) == 1 and live_contacts(emulator)[contact(7).canonical_id]["FirstName"] == "Ala"


def test_locked_rows_are_transient_and_the_rest_is_written(emulator, connector):
    emulator.faults.lock_next = 1
    results = connector.write("customer", [contact(1), contact(2)])
    assert isinstance(results[0].error, TransientError) and "UNABLE_TO_LOCK_ROW" in str(results[0].error)
    assert results[1].ok


def test_a_503_is_retried_by_the_session_and_counted(emulator, connector):
    connector.read_changes("customer", None)  # logged in
    before = connector.calls
    emulator.faults.fail_next(2, 503, "SERVER_UNAVAILABLE")
    (result,) = connector.write("customer", [contact(1)])
    assert result.ok and connector.calls - before == 3


def test_503s_past_the_retries_are_transient(emulator, connector):
    emulator.faults.fail_next(5, 503, "SERVER_UNAVAILABLE")
    connector.session.attempts = 2
    with pytest.raises(TransientError, match="SERVER_UNAVAILABLE"):
        connector.read_changes("customer", None)


def test_a_write_whose_answer_times_out_is_not_repeated_blind_but_a_read_is(emulator):
    # Given a connector with a short timeout, and an org that answers the next call late (carried out)
    conn = SalesforceConnector("crm", settings_for(emulator, timeout=0.3))
    conn.read_changes("customer", None)  # logged in
    before = conn.calls
    emulator.faults.stall_next(1, 0.6)
    # When a write times out
    with pytest.raises(TransientError):
        conn.write("customer", [contact(1)])
    # Then it was sent once and not repeated: the org holds it, and the pipeline will read it back first
    assert conn.calls - before == 1 and len(live_contacts(emulator)) == 1
    time.sleep(0.4)  # the late answer has gone
    # while a read that times out is simply asked again
    emulator.faults.stall_next(1, 0.6)
    page = conn.read_changes("customer", None)
    assert len(page.records) == 1 and conn.calls - before == 3
    conn.close()


def test_fetch_written_finds_records_by_the_external_id_stamped_on_them(emulator, connector):
    connector.write("customer", [contact(1), contact(2), contact(3)])
    wanted = [contact(1).canonical_id, contact(3).canonical_id, "00000000-0000-4000-8000-000000000099"]
    found = connector.fetch_written("customer", wanted)
    assert sorted(r.data["Synchub_Id__c"] for r in found) == wanted[:2]
    assert connector.fetch_written("customer", ["x' OR Name != '"]) == []  # bound as a literal, not SOQL


def test_re_authentication_mid_run_loses_no_request(emulator, connector):
    connector.write("customer", [contact(i) for i in range(5)])
    emulator.expire_sessions()
    # the next call meets 401 INVALID_SESSION_ID, logs in again and repeats the same request
    results = connector.write("customer", [contact(i) for i in range(5, 10)])
    assert all(r.ok for r in results) and len(live_contacts(emulator)) == 10
    assert connector.token_fetches == 2
    emulator.expire_sessions()
    page = connector.read_changes("customer", None)
    assert len(page.records) == 10 and connector.token_fetches == 3


def test_deletes_by_canonical_or_native_id_and_reads_them_back_as_deletions(emulator, connector):
    r1, r2, _ = connector.write("customer", [contact(1), contact(2), contact(3)])
    page = connector.read_changes("customer", None)
    results = connector.write(
        "customer",
        [
            WriteRequest(contact(1).canonical_id, None, {}, op="delete"),
            WriteRequest(contact(2).canonical_id, r2.native_id, {}, op="delete"),
            WriteRequest("never-written", None, {}, op="delete"),
        ],
    )
    assert [r.ok for r in results] == [True, True, True] and results[0].native_id == r1.native_id
    assert set(live_contacts(emulator)) == {contact(3).canonical_id}
    later = connector.read_changes("customer", page.cursor)
    assert {(r.native_id, r.deleted) for r in later.records} == {(r1.native_id, True), (r2.native_id, True)}


def test_records_sharing_one_timestamp_across_pages_are_each_read_once():
    with SalesforceEmulator(page_size=200) as emu:
        # Given 450 records with the same SystemModstamp (one bulk load in the same second)
        frozen = datetime(2025, 11, 20, 9, 15, tzinfo=UTC)
        emu.org.clock = lambda: frozen
        for i in range(450):
            emu.org.create("Contact", {"LastName": f"Same{i}"})
        conn = SalesforceConnector("crm", settings_for(emu, fields={"customer": ["LastName"]}))
        seen: list[str] = []
        cursor = None
        pages = 0
        # When it is read 300 at a time (pages of 200 rows: nextRecordsUrl is followed)
        while True:
            page = conn.read_changes("customer", cursor, limit=300)
            seen += [r.native_id for r in page.records]
            cursor = page.cursor
            pages += 1
            if not page.more:
                break
        # Then every record is read exactly once, and the cursor does not re-emit them
        assert len(seen) == 450 and len(set(seen)) == 450
        assert conn.read_changes("customer", cursor).records == []
        # And a record saved a second later is picked up, alone
        emu.org.clock = lambda: frozen + timedelta(seconds=1)
        emu.org.create("Contact", {"LastName": "Late"})
        late = conn.read_changes("customer", cursor)
        assert [r.data["LastName"] for r in late.records] == ["Late"]
        conn.close()


def test_an_idle_poll_is_one_api_call_per_entity(emulator):
    conn = SalesforceConnector("crm", settings_for(emulator, fields={"customer": ["LastName"]}))
    conn.write("customer", [contact(1)])
    cursor = conn.read_changes("customer", None).cursor
    before = conn.calls
    page = conn.read_changes("customer", cursor)
    assert page.records == [] and page.cursor == cursor and conn.calls - before == 1


def test_api_usage_is_read_from_the_limit_header(emulator, connector):
    connector.write("customer", [contact(1)])
    assert connector.api_usage is not None
    assert (connector.api_usage.used, connector.api_usage.limit) == (emulator.api_used, 15000)


def test_reads_pause_past_their_share_of_the_daily_allocation_while_writes_go_on():
    with SalesforceEmulator(daily_limit=10) as emu:
        conn = SalesforceConnector("crm", settings_for(emu, pause_reads_at=0.5, pause_seconds=600))
        for i in range(5):
            conn.write("customer", [contact(i)])
        calls = conn.calls
        with pytest.raises(RateLimited) as info:
            conn.read_changes("customer", None)
        assert info.value.retry_after == 600 and conn.calls == calls  # paused before calling
        assert conn.write("customer", [contact(9)])[0].ok  # urgent work continues


def test_an_exhausted_daily_limit_is_rate_limited(emulator):
    emulator.daily_limit = 3
    conn = SalesforceConnector("crm", settings_for(emulator, pause_writes_at=2.0, pause_reads_at=2.0))
    for i in range(3):
        conn.write("customer", [contact(i)])
    with pytest.raises(RateLimited, match="REQUEST_LIMIT_EXCEEDED"):
        conn.write("customer", [contact(5)])


def test_more_than_200_records_go_in_calls_of_200(emulator, connector):
    results = connector.write("customer", [contact(i) for i in range(450)])
    assert all(r.ok for r in results) and connector.calls == 3 and len(live_contacts(emulator)) == 450


def test_check_names_every_missing_or_read_only_field_and_the_external_id(emulator, connector):
    del emulator.org.schema["Contact"].fields["Loyalty_Id__c"]
    del emulator.org.schema["Shipment__c"].fields["Synchub_Id__c"]
    with pytest.raises(ConfigError) as info:
        connector.check(
            {
                "customer": {"LastName": "both", "Loyalty_Id__c": "both", "CreatedDate": "in", "Birthdate": "in"},
                "order": {"TotalAmount": "out"},
                "shipment": ["Carrier__c"],
            }
        )
    text = str(info.value)
    assert "Contact.Loyalty_Id__c is missing" in text
    assert "Order.TotalAmount is not updateable" in text
    assert "Shipment__c.Synchub_Id__c is missing" in text and "External ID" in text
    assert "LastName" not in text and "Birthdate" not in text and "CreatedDate" not in text


@pytest.mark.parametrize("person_accounts", [False, True], ids=["contacts", "person-accounts"])
def test_the_shipped_mapping_fits_the_documented_org(person_accounts):
    from pathlib import Path

    from mappings.loader import load_mapping

    mapping = load_mapping(Path(__file__).resolve().parents[2] / "mappings" / "salesforce.yaml")
    wanted: dict[str, dict[str, str]] = {}
    for entity in mapping.entities:
        fields: dict[str, str] = {}
        for direction in ("in", "out"):
            for f in mapping.entity(entity).fields_for(direction):
                if f.native and "[]" not in f.native and "." not in f.native:
                    fields[f.native] = "both" if fields.get(f.native, direction) != direction else direction
        wanted[entity] = fields
    with SalesforceEmulator(person_accounts=person_accounts) as emu:
        connector = SalesforceConnector("crm", settings_for(emu, person_accounts=person_accounts))
        # raises, naming each gap, if the mapping and the set-up doc disagree (with Person Accounts:
        # the customer's fields as Account's Person*/__pc fields)
        connector.check(wanted)
        described = {p.split("/")[-2] for m, p in emu.requests if p.endswith("/describe")}
        assert ("Account" in described) is person_accounts and ("Contact" in described) is not person_accounts
        connector.close()


def test_person_accounts_write_and_read_contact_shaped_records():
    with SalesforceEmulator(person_accounts=True) as emu:
        emu.org.clock = TickingClock()
        conn = SalesforceConnector("crm", settings_for(emu, person_accounts=True))
        (res,) = conn.write("customer", [contact(1, Email="ola@example.pl", Loyalty_Id__c="KL-9")])
        row = emu.org.table("Account")[res.native_id]
        assert row["PersonEmail"] == "ola@example.pl" and row["Loyalty_Id__pc"] == "KL-9" and row["IsPersonAccount"]
        emu.org.create("Account", {"Name": "Business Ltd"})  # not a person: not a customer
        (rec,) = conn.read_changes("customer", None).records
        assert rec.data["Email"] == "ola@example.pl" and rec.data["Loyalty_Id__c"] == "KL-9"
        conn.close()


def test_reads_wait_until_a_second_is_over_so_a_later_save_in_it_is_not_skipped():
    with SalesforceEmulator() as emu:  # the org's real clock
        conn = SalesforceConnector("crm", settings_for(emu, read_lag_seconds=1.0, fields={"customer": ["LastName"]}))
        conn.write("customer", [contact(1), contact(2)])
        assert conn.read_changes("customer", None).records == []  # its second is not over yet
        time.sleep(2.1)
        page = conn.read_changes("customer", None)
        assert len(page.records) == 2
        conn.close()


def test_check_without_arguments_describes_every_mapped_object(emulator, connector):
    connector.check()  # the documented org is ready
    described = {p.split("/")[-2] for m, p in emulator.requests if p.endswith("/describe")}
    assert described == {"Contact", "Order", "Product2", "Case", "Shipment__c", "Task"}
    emulator.org.schema["Task"].fields["Synchub_Id__c"].external_id = False
    fresh = SalesforceConnector("crm", settings_for(emulator))
    with pytest.raises(ConfigError, match=r"Task\.Synchub_Id__c is not marked External ID"):
        fresh.check()


def test_writes_pause_past_their_own_share_and_a_backfill_does_not_start_past_the_read_share():
    with SalesforceEmulator(daily_limit=10) as emu:
        emu.org.clock = TickingClock()
        conn = SalesforceConnector(
            "crm", settings_for(emu, pause_reads_at=0.3, pause_writes_at=0.5, pause_seconds=60, bulk_threshold=0)
        )
        # Given 3 of 10 calls used: past the read share, below the write share
        for i in range(3):
            assert conn.write("customer", [contact(i)])[0].ok
        calls = conn.calls
        # Then a backfill does not start (not even its COUNT() query) …
        with pytest.raises(RateLimited, match="backfilling paused") as info:
            next(conn.backfill("customer"))
        assert info.value.retry_after == 60 and conn.calls == calls
        # … while writes go on until their own share is passed, then pause before calling too
        assert conn.write("customer", [contact(3)])[0].ok and conn.write("customer", [contact(4)])[0].ok
        calls = conn.calls
        with pytest.raises(RateLimited, match="writing paused"):
            conn.write("customer", [contact(5)])
        assert conn.calls == calls and emu.api_used == 5
        conn.close()
