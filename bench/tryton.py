"""Records/s and RPC calls per 1,000 parties of the Tryton connector against a real trytond 8.2.

Starts a server from the cached template (sandbox/tryton/server.py; the first run builds the cache,
about 40 s), then measures through the connector — the same code the sync runs:

* write (create): N new customers as parties with an e-mail, a mobile and an address, in the
  connector's batches (lookup by code, one create per batch, read-back of the stamps);
* write (update): the same N with a changed e-mail and city (read, then one write per party);
* read (initial): every party from an empty cursor, children included;
* read (incremental): after N e-mails changed in Tryton (party.write_date untouched), the
  changes since the cursor;
* read (nothing new): one poll that finds nothing, in calls.

    uv run python bench/tryton.py                  # N = 1000
    uv run python bench/tryton.py --parties 2000 --write-docs

Figures are printed, never asserted. SQLite backs the server, on a shared machine: compare runs
with each other, not with a production PostgreSQL server.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python bench/tryton.py` puts bench/ first, not the project
    sys.path.insert(0, str(ROOT))

from bench._docs import replace_section  # noqa: E402
from connectors.tryton import TrytonConnector  # noqa: E402
from core.connector import WriteRequest  # noqa: E402
from sandbox.tryton.server import PINS, TrytonServer  # noqa: E402


def payload(i: int, email: str, city: str) -> dict[str, Any]:
    """A customer as mappings/tryton.yaml writes it out."""
    return {
        "name": f"Klient{i:05d} Testowy",
        "contact_mechanisms": [{"type": "email", "value": email}, {"type": "mobile", "value": f"+48600{i:06d}"}],
        "addresses": [{"street": f"ul. Długa {i}", "postal_code": "31-147", "city": city, "country": {"code": "PL"}}],
    }


def timed_write(conn: TrytonConnector, requests: list[WriteRequest]) -> tuple[float, int, list[str]]:
    calls0, t0 = conn.calls, time.perf_counter()
    native: list[str] = []
    for start in range(0, len(requests), conn.batch_size):
        for res in conn.write("customer", requests[start : start + conn.batch_size]):
            if not res.ok:
                raise SystemExit(f"write failed: {res.error}")
            native.append(str(res.native_id))
    return time.perf_counter() - t0, conn.calls - calls0, native


def timed_read(conn: TrytonConnector, cursor: str | None) -> tuple[float, int, int, str | None]:
    calls0, t0, n = conn.calls, time.perf_counter(), 0
    while True:
        page = conn.read_changes("customer", cursor)
        n += len(page.records)
        cursor = page.cursor
        if not page.more:
            break
    return time.perf_counter() - t0, conn.calls - calls0, n, cursor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parties", type=int, default=1000)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    n = args.parties
    server = TrytonServer()
    rows: list[tuple[str, int, float, float]] = []
    try:
        conn = TrytonConnector("erp", server.settings())
        ids = [str(uuid.uuid4()) for _ in range(n)]
        _, _, _, cursor = timed_read(conn, None)  # the template's own parties: not measured

        creates = [WriteRequest(cid, None, payload(i, f"k{i}@example.pl", "Kraków")) for i, cid in enumerate(ids)]
        secs, calls, native = timed_write(conn, creates)
        rows.append(("write (create)", n, secs, calls))

        updates = [
            WriteRequest(cid, native[i], payload(i, f"k{i}.nowy@example.pl", "Wieliczka")) for i, cid in enumerate(ids)
        ]
        secs, calls, _ = timed_write(conn, updates)
        rows.append(("write (update)", n, secs, calls))

        secs, calls, count, _ = timed_read(TrytonConnector("erp", server.settings()), None)
        rows.append(("read (initial, all parties)", count, secs, calls))

        _, _, _, cursor = timed_read(conn, cursor)  # catch up with our own writes
        mechanisms = conn.client.search_read(
            "party.contact_mechanism", [["party", "in", [int(x) for x in native]], ["type", "=", "email"]], ["id"]
        )
        for m in mechanisms:  # a person fixing e-mails in Tryton: one write each
            conn.client.model("party.contact_mechanism", "write", [m["id"]], {"value": f"x{m['id']}@example.pl"})
        time.sleep(0.01)
        secs, calls, count, cursor = timed_read(conn, cursor)
        rows.append(("read (incremental, e-mails changed)", count, secs, calls))

        secs, calls, count, cursor = timed_read(conn, cursor)
        rows.append(("read (nothing new)", count, secs, calls))
        conn.close()
    finally:
        server.stop()

    lines = [
        f"| {what} | {count} | {count / secs:,.0f} | {calls * 1000 / count:,.1f} | {calls} |"
        if count
        else f"| {what} | 0 | — | — | {calls} |"
        for what, count, secs, calls in rows
    ]
    table = "\n".join(
        ["| operation | records | records/s | calls per 1,000 | calls |", "| --- | ---: | ---: | ---: | ---: |", *lines]
    )
    print(table)
    if args.write_docs:
        replace_section(
            "## Tryton connector (real trytond)\n\n"
            f"`uv run python bench/tryton.py --parties {n} --write-docs` — trytond {PINS['trytond']} on SQLite, "
            f"one server on 127.0.0.1, Python {platform.python_version()}, {os.cpu_count()} CPUs (shared).\n"
            "Batches of 100 parties; every party has an e-mail, a mobile and an address. "
            '"calls per 1,000" counts JSON-RPC calls (logins included) per 1,000 records.\n\n' + table + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
