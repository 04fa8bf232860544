"""Backfills from the CRM: above ``bulk_threshold`` records a Bulk API 2.0 queryAll job (a handful
of calls for any size, CSV pages streamed), below it the REST reads; either way every record once,
deleted ones included, typed as the REST reads give them, and nothing changed meanwhile is lost."""

from __future__ import annotations

from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceEmulator
from tests.salesforce.conftest import settings_for


def seed(emu: SalesforceEmulator, n: int) -> list[str]:
    return [
        emu.org.create(
            "Contact", {"LastName": f"Nowak{i}", "Email": f"k{i}@example.pl", "HasOptedOutOfEmail": i % 2 == 0}
        )
        for i in range(n)
    ]


def jobs(emu: SalesforceEmulator) -> list[tuple[str, str]]:
    return [(m, p) for m, p in emu.requests if "/jobs/query" in p]


def test_a_large_backfill_is_one_bulk_job_with_csv_pages_typed_like_rest(emulator):
    ids = seed(emulator, 1200)
    emulator.org.delete("Contact", ids[5])
    conn = SalesforceConnector("crm", settings_for(emulator, bulk_threshold=1000, bulk_page_size=500))
    pages = list(conn.backfill("customer", page=300))
    records = [r for p in pages for r in p.records]
    # every record once, the deleted one marked so
    assert sorted(r.native_id for r in records) == sorted(ids)
    assert [r.native_id for r in records if r.deleted] == [ids[5]]
    # one job: created, polled until complete, then 3 result pages of 500 (locator paging)
    assert [m for m, _ in jobs(emulator)].count("POST") == 1
    assert sum(1 for m, p in jobs(emulator) if p.endswith("/results")) == 3
    # only the last page carries the cursor
    assert all(p.cursor is None for p in pages[:-1]) and pages[-1].cursor is not None
    # CSV text typed back with describe: booleans, nulls
    first = next(r for r in records if r.native_id == ids[0]).data
    assert first["HasOptedOutOfEmail"] is True and first["FirstName"] is None and first["LastName"] == "Nowak0"
    # the calls: count, token-less describe (cached), job, 2 status polls, 3 result pages
    assert conn.calls <= 9, conn.calls
    conn.close()


def test_a_small_backfill_reads_through_rest_and_makes_no_job(emulator):
    ids = seed(emulator, 30)
    conn = SalesforceConnector("crm", settings_for(emulator, bulk_threshold=1000, read_lag_seconds=0))
    records = [r for p in conn.backfill("customer", page=10) for r in p.records]
    assert sorted(r.native_id for r in records) == sorted(ids)
    assert jobs(emulator) == []
    conn.close()


def test_a_record_changed_while_the_job_ran_is_read_again_by_the_next_incremental_read(emulator):
    ids = seed(emulator, 50)
    conn = SalesforceConnector("crm", settings_for(emulator, bulk_threshold=10, read_lag_seconds=0))
    pages = conn.backfill("customer", page=100)
    first = next(pages)  # the job is created and its results read
    rest = list(pages)
    emulator.org.update("Contact", ids[7], {"FirstName": "Zmieniona"})  # an edit at the same moment
    cursor = (rest[-1] if rest else first).cursor
    later = conn.read_changes("customer", cursor)
    assert ids[7] in [r.native_id for r in later.records]
    assert next(r for r in later.records if r.native_id == ids[7]).data["FirstName"] == "Zmieniona"
    conn.close()


def test_orders_backfill_through_rest_because_a_bulk_job_cannot_read_their_products(emulator):
    conn = SalesforceConnector("crm", settings_for(emulator, bulk_threshold=0))
    assert [r for p in conn.backfill("order") for r in p.records] == []
    assert jobs(emulator) == []
    conn.close()


def test_the_emulator_refuses_a_nested_query_in_a_bulk_job(emulator):
    conn = SalesforceConnector("crm", settings_for(emulator))
    import pytest

    from core.errors import SynchubError

    with pytest.raises(SynchubError, match="Nested queries"):
        conn._call(
            lambda sf: sf.bulk2.Order._client.create_job(
                "queryAll", "SELECT Id, (SELECT Id FROM OrderItems) FROM Order"
            )
        )
    conn.close()
