"""Refresh mappings/samples/tryton-*.json from a real Tryton: ``python -m tests.tryton.samples``.

Starts a server from the template, does what people do (a customer with contacts and an address,
a POS ticket for her, a complaint, a goods receipt), and saves one record per entity exactly as
the connector hands it to the mapping. test_samples.py checks the mapping reads what these hold.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from connectors.tryton import TrytonConnector
from sandbox.tryton.erp import Erp
from sandbox.tryton.server import TrytonServer

SAMPLES = Path(__file__).resolve().parents[2] / "mappings" / "samples"
ENTITIES = ["customer", "product", "stock_level", "touchpoint", "complaint"]


def build(server: TrytonServer) -> dict[str, dict[str, Any]]:
    erp = Erp(server)
    try:
        (pl,) = erp.search("country.country", [["code", "=", "PL"]], ["id"])
        (party,) = erp.rpc.model(
            "party.party",
            "create",
            [
                {
                    "name": "Małgorzata Wiśniewska",
                    "code": "6f1c2e1a-3b44-4d8e-9a57-0c2f5d7b8e11",
                    "contact_mechanisms": [
                        ["create", [{"type": "email", "value": "malgorzata.wisniewska@example.pl"},
                                    {"type": "mobile", "value": "+48601234567"}]]
                    ],
                    "addresses": [
                        ["create", [{"street": "ul. Floriańska 15/4", "postal_code": "31-019", "city": "Kraków",
                                     "country": pl["id"]}]]
                    ],
                }
            ],
        )  # fmt: skip
        erp.receive("KUBEK-01", 5)
        erp.pos_sale(party, [("KUBEK-01", 2, "30.00")])
        (complaint,) = erp.rpc.model(
            "sale.complaint",
            "create",
            [{"customer": party, "type": server.ids["complaint_type"], "description": "Pęknięte wieczko."}],
        )
        erp.button("sale.complaint", "wait", complaint)
    finally:
        erp.close()
    conn = TrytonConnector("erp", server.settings())
    out: dict[str, dict[str, Any]] = {}
    for entity in ENTITIES:
        records = conn.read_changes(entity, None).records
        wanted = {
            "customer": lambda r: r.native_id == str(party),
            "stock_level": lambda r: r.data["code"] == "KUBEK-01",
            "product": lambda r: r.data["code"] == "KUBEK-01",
        }.get(entity, lambda r: True)
        out[entity] = next(r.data for r in records if wanted(r))
    conn.close()
    return out


def main() -> int:
    server = TrytonServer()
    try:
        samples = build(server)
    finally:
        server.stop()
    for entity, data in samples.items():
        path = SAMPLES / f"tryton-{entity.replace('_', '-')}.json"
        path.write_text(json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
