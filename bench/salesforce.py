"""API calls and throughput of the Salesforce connector against the emulated org (HTTPS, 127.0.0.1).

Figures: API calls per 1,000 upserted records (goal ≤ 6: sObject Collections carry 200 a call),
API calls per idle poll cycle with no changes (goal: 1 per entity), and records/s written and read
with 50 ms of emulated latency per call (what an org across the internet costs, roughly).

    uv run python bench/salesforce.py                  # 1,000 records
    uv run python bench/salesforce.py --records 5000 --write-docs
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._docs import replace_section  # noqa: E402
from connectors.salesforce import SalesforceConnector  # noqa: E402
from core.connector import WriteRequest  # noqa: E402
from sandbox.salesforce import SalesforceEmulator  # noqa: E402

ENTITIES = ["customer", "order", "product", "complaint", "shipment", "touchpoint"]


class PastClock:
    """The org's clock, a day behind and one second per save: every saved record is in a finished
    second, so the connector's read lag does not hold it back."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC) - timedelta(days=1)

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def connector_for(emu: SalesforceEmulator) -> SalesforceConnector:
    return SalesforceConnector(
        "crm",
        {
            "login_url": emu.base_url,
            "client_id": emu.client_id,
            "client_secret": emu.client_secret,
            "ca_bundle": emu.ca_bundle,
        },
    )


def requests_for(n: int, start: int = 0) -> list[WriteRequest]:
    return [
        WriteRequest(
            f"00000000-0000-4000-8000-{start + i:012d}",
            None,
            {"FirstName": "Ola", "LastName": f"Nowak{start + i}", "Email": f"ola{start + i}@example.pl"},
        )
        for i in range(n)
    ]


def run(records: int, latency: float) -> dict[str, Any]:
    out: dict[str, Any] = {"records": records}
    with SalesforceEmulator() as emu:
        emu.org.clock = PastClock()
        conn = connector_for(emu)
        batch = conn.batch_size
        reqs = requests_for(records)
        conn.sf  # log in first: token requests are not API calls  # noqa: B018
        for i in range(0, records, batch):
            conn.write("customer", reqs[i : i + batch])
        out["upsert_calls_per_1000"] = round(conn.calls * 1000 / records, 2)
        out["token_requests"] = emu.token_requests
        # one poll cycle to set every entity's cursor (and describe each object once), then an idle cycle
        cursors: dict[str, str | None] = {}
        for entity in ENTITIES:
            cursor = None
            while True:
                page = conn.read_changes(entity, cursor, limit=2000)
                cursor = page.cursor
                if not page.more:
                    break
            cursors[entity] = cursor
        before = conn.calls
        for entity in ENTITIES:
            assert conn.read_changes(entity, cursors[entity]).records == []
        out["idle_poll_calls"] = conn.calls - before
        out["entities"] = len(ENTITIES)
        conn.close()

        emu.faults.latency = latency
        conn = connector_for(emu)
        conn.sf  # noqa: B018
        started = time.perf_counter()
        for i in range(0, records, batch):
            conn.write("customer", requests_for(min(batch, records - i), records + i))
        out["write_records_per_s"] = round(records / (time.perf_counter() - started))
        started = time.perf_counter()
        cursor, read = None, 0
        while True:
            page = conn.read_changes("customer", cursor, limit=2000)
            read += len(page.records)
            cursor = page.cursor
            if not page.more:
                break
        out["read_records_per_s"] = round(read / (time.perf_counter() - started))
        out["read_records"] = read
        out["latency_ms"] = int(latency * 1000)
        conn.close()
    return out


def run_backfill_and_orders(records: int, backfill: int) -> dict[str, Any]:
    """In an org of its own: the emulator scans tables per upsert, so a big one would slow the others."""
    out: dict[str, Any] = {}
    with SalesforceEmulator() as emu:
        emu.org.clock = PastClock()
        batch = SalesforceConnector.batch_size
        # backfills of `backfill` contacts put straight into the org:
        # a Bulk API 2.0 job, then the REST reads, per 1,000 records
        for i in range(backfill):
            emu.org.create("Contact", {"LastName": f"Kowalska{i}", "Email": f"k{i}@example.pl"})
        for mode, threshold in (("bulk", 0), ("rest", 10**9)):
            conn = connector_for(emu)
            conn.settings.update(bulk_threshold=threshold)
            conn.bulk_threshold = threshold
            conn.sf  # noqa: B018
            read = sum(len(p.records) for p in conn.backfill("customer", page=2000, poll_every=0.05))
            out[f"backfill_{mode}_calls_per_1000"] = round(conn.calls * 1000 / read, 2)
            out["backfill_records"] = read
            conn.close()
        # orders with two products each, in batches of 200 (the first batch also looks up the price book)
        account = emu.org.create("Account", {"Name": "Bench"})
        contact = emu.org.create("Contact", {"LastName": "Bench", "AccountId": account})
        for code in ("KUB-0001", "KOC-0002"):
            emu.org.create("Product2", {"Name": code, "ProductCode": code, "Price__c": 10.0})
        conn = connector_for(emu)
        conn.sf  # noqa: B018
        orders = [
            WriteRequest(
                f"00000000-0000-4000-9000-{i:012d}",
                None,
                {
                    "BillToContactId": contact,
                    "EffectiveDate": "2026-11-20",
                    "OrderItems": {"records": [
                        {"Sku__c": "KUB-0001", "Quantity": 2, "UnitPrice": 10.0},
                        {"Sku__c": "KOC-0002", "Quantity": 1, "UnitPrice": 10.0},
                    ]},
                },
            )
            for i in range(records)
        ]  # fmt: skip
        for i in range(0, records, batch):
            assert all(r.ok for r in conn.write("order", orders[i : i + batch]))
        out["order_calls_per_1000"] = round(conn.calls * 1000 / records, 2)
        conn.close()
    return out


def table(r: dict[str, Any]) -> list[str]:
    return [
        "| figure | value | goal |",
        "| --- | ---: | ---: |",
        f"| API calls per 1,000 upserted records | {r['upsert_calls_per_1000']} | ≤ 6 |",
        f"| API calls per 1,000 orders with 2 products each | {r['order_calls_per_1000']} | |",
        f"| API calls per 1,000 records backfilled, Bulk API 2.0 ({r['backfill_records']:,} records) | "
        f"{r['backfill_bulk_calls_per_1000']} | |",
        f"| API calls per 1,000 records backfilled, REST reads | {r['backfill_rest_calls_per_1000']} | |",
        f"| API calls per idle poll cycle ({r['entities']} entities) | {r['idle_poll_calls']} | {r['entities']} |",
        f"| records/s written, {r['latency_ms']} ms latency per call | {r['write_records_per_s']:,} | |",
        f"| records/s read ({r['read_records']:,} rows), {r['latency_ms']} ms latency per call | "
        f"{r['read_records_per_s']:,} | |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--backfill", type=int, default=50_000, help="extra contacts for the backfill figures")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    result = {**run(args.records, args.latency), **run_backfill_and_orders(args.records, args.backfill)}
    print("\n".join(table(result)))
    if args.write_docs:
        command = "uv run python bench/salesforce.py " + " ".join(sys.argv[1:]).replace("--write-docs", "").strip()
        replace_section(
            "\n".join(
                [
                    "## Salesforce connector (emulated org)",
                    "",
                    f"Command: `{command.strip()}` — {datetime.now(UTC):%Y-%m-%d}. The connector against",
                    "sandbox/salesforce over HTTPS on 127.0.0.1; upserts through sObject Collections (200 a call),",
                    "reads by the SystemModstamp/Id cursor (queryAll); backfills by a Bulk API 2.0 queryAll job",
                    "(CSV pages of 50,000) or by REST reads (2,000 a page); orders with their products",
                    "(OrderItems, 200 a call). Token requests are not API calls",
                    f"(this run: {result['token_requests']}).",
                    "",
                    *table(result),
                    "",
                ]
            )
        )


if __name__ == "__main__":
    main()
