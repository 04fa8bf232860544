"""The incremental cursor: rows sharing a timestamp are not skipped, late commits inside the
overlap window are caught, and nothing is delivered twice. Pure logic first, then the real server."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from connectors.tryton import TrytonConnector
from connectors.tryton.cursor import ModelCursor
from core.errors import ConfigError
from sandbox.tryton.erp import Erp
from sandbox.tryton.server import TrytonServer

T0 = dt.datetime(2026, 11, 20, 9, 0, 0)


def row(rid: int, at: dt.datetime, written: dt.datetime | None = None) -> dict[str, object]:
    return {"id": rid, "create_date": at, "write_date": written}


def sweep(cur: ModelCursor, table: list[dict[str, object]], page: int) -> list[int]:
    """Read the table as the server would answer the cursor's domain, page by page."""
    delivered: list[int] = []
    while True:
        since, after = cur.since, cur.after_id
        matching = [
            r
            for r in sorted(table, key=lambda r: r["id"])  # type: ignore[arg-type, return-value]
            if int(r["id"]) > after  # type: ignore[call-overload]
            and (since is None or max(x for x in (r["create_date"], r["write_date"]) if x) >= since)  # type: ignore[type-var]
        ][:page]
        delivered += [int(r["id"]) for r in cur.take(matching)]  # type: ignore[call-overload]
        if len(matching) < page:
            cur.end_sweep(dt.timedelta(seconds=60))
            return delivered


def test_rows_sharing_one_timestamp_are_all_delivered_across_pages_and_only_once():
    table = [row(i, T0) for i in range(1, 8)]  # one transaction: one stamp for seven rows
    cur = ModelCursor()
    assert sweep(cur, table, page=3) == [1, 2, 3, 4, 5, 6, 7]
    assert sweep(cur, table, page=3) == []  # caught up: the overlap re-read delivers nothing again


def test_a_late_commit_with_an_older_stamp_is_caught_inside_the_overlap_window():
    table = [row(1, T0), row(2, T0 + dt.timedelta(seconds=30))]
    cur = ModelCursor()
    assert sweep(cur, table, page=10) == [1, 2]
    # a transaction that started before row 2 was stamped commits only now
    table.append(row(3, T0 + dt.timedelta(seconds=10)))
    assert sweep(cur, table, page=10) == [3]


def test_a_row_changed_again_is_delivered_again_and_the_state_survives_json():
    table = [row(1, T0), row(2, T0)]
    cur = ModelCursor()
    sweep(cur, table, page=10)
    table[0]["write_date"] = T0 + dt.timedelta(seconds=5)
    cur = ModelCursor.load(json.loads(json.dumps(cur.dump())))
    assert sweep(cur, table, page=10) == [1]


def test_the_domain_is_data_not_text():
    cur = ModelCursor(since=T0, after_id=42)
    assert cur.domain([["state", "=", "done"]]) == [
        ["state", "=", "done"],
        ["OR", ["write_date", ">=", T0], ["create_date", ">=", T0]],
        ["id", ">", 42],
    ]


def test_parties_created_in_one_transaction_are_read_once_each_in_small_pages(tryton: TrytonServer, erp: Erp):
    # Given seven parties created in one call: one transaction, one timestamp
    erp.rpc.model("party.party", "create", [{"name": f"Klient {i}", "code": f"bulk-{i}"} for i in range(7)])
    conn = TrytonConnector("erp", tryton.settings(page_size=3, scan_size=3))

    # When the connector reads customers in pages of three
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = conn.read_changes("customer", cursor)
        seen += [r.data["code"] for r in page.records]
        cursor = page.cursor
        if not page.more:
            break

    # Then each appears exactly once, and the next read finds nothing new
    bulk = [c for c in seen if c and c.startswith("bulk-")]
    assert sorted(bulk) == [f"bulk-{i}" for i in range(7)]
    assert conn.read_changes("customer", cursor).records == []


def test_an_expired_session_is_renewed_once_and_the_call_goes_through():
    server = TrytonServer(session_max_age=1)
    try:
        conn = TrytonConnector("erp", server.settings())
        conn.read_changes("complaint", None)
        assert conn.client.logins == 1
        time.sleep(2.5)
        page = conn.read_changes("complaint", None)
        assert page.records == []
        assert conn.client.logins == 2
    finally:
        server.stop()


def test_a_wrong_password_is_a_configuration_error_without_the_password_in_it(tryton: TrytonServer):
    conn = TrytonConnector("erp", tryton.settings(password="not-the-password"))
    with pytest.raises(ConfigError) as info:
        conn.read_changes("customer", None)
    assert "not-the-password" not in str(info.value)


def test_party_domain_narrows_the_customers_read_but_never_the_writes(tryton: TrytonServer, erp: Erp):
    # Given parties that are customers and one that is not (the company's own party is another)
    erp.rpc.model(
        "party.party", "create", [{"name": "Klient", "code": "cust-1"}, {"name": "Dostawca", "code": "sup-1"}]
    )
    conn = TrytonConnector("erp", tryton.settings(party_domain=[["code", "like", "cust-%"]]))

    # When customers are read
    codes = [r.data["code"] for r in conn.read_changes("customer", None).records]

    # Then only the customers come in
    assert codes == ["cust-1"]
    with pytest.raises(ConfigError):
        TrytonConnector("erp", tryton.settings(party_domain="code = 'x'"))


def test_the_erps_own_company_is_never_read_as_a_customer(tryton: TrytonServer, erp: Erp):
    # Given the retailer's own company (a party in Tryton) and one customer, no party_domain
    (own,) = erp.rpc.search_read("company.company", [], ["party"])
    erp.rpc.model("party.party", "create", [{"name": "Klient", "code": "cust-1"}])
    conn = TrytonConnector("erp", tryton.settings())

    # When customers are read
    ids = [int(r.native_id) for r in conn.read_changes("customer", None).records]

    # Then the customer comes in, and the company's party does not
    assert own["party"] not in ids
    assert len(ids) == 1
