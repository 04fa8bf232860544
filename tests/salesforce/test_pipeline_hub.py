"""The Salesforce connector as the hub of a real Pipeline (memory spoke, real store): records the
CRM refuses become dead letters with Salesforce's messages; the rest reach the org."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from connectors.memory import MemoryConnector
from connectors.salesforce import SalesforceConnector
from core.store.schema import dead_letters
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.salesforce import ValidationRule
from tests.salesforce.conftest import settings_for
from tests.sync.helpers import MAPPINGS, Clock

ROOT = Path(__file__).resolve().parents[2]


def test_200_customers_with_3_invalid_give_197_contacts_and_3_dead_letters(store, emulator):
    # Given a shop spoke with 200 customers, 3 of which the org's rules refuse
    emulator.add_rule(
        "Contact",
        ValidationRule(lambda r: (r.get("Email") or "").endswith("@blocked.test"), "Email domain is blocked", "Email"),
    )
    crm = SalesforceConnector("crm", settings_for(emulator))
    shop = MemoryConnector("shop")
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(ROOT / "mappings" / "salesforce.yaml"), {"customer": "both"}, crm),
        spokes={"shop": System("shop", "shopify", load_mapping(MAPPINGS / "shop.yaml"), {"customer": "both"}, shop)},
    )
    pipeline = Pipeline(store, systems, clock=Clock())
    for i in range(200):
        record = {"firstName": "Ola", "lastName": f"Nowak{i}", "email": f"ola{i}@example.pl"}
        if i == 10:
            del record["lastName"]  # REQUIRED_FIELD_MISSING
        if i == 50:
            record["lastName"] = "X" * 81  # STRING_TOO_LONG
        if i == 150:
            record["email"] = "spam@blocked.test"  # FIELD_CUSTOM_VALIDATION_EXCEPTION
        shop.system.put("customer", record)
    # When the pipeline polls the shop and drains its outbox into the CRM
    pipeline.poll("shop", "customer")
    pipeline.drain()
    # Then 197 contacts exist, in batches of at most 200, and 3 dead letters carry Salesforce's words
    contacts = [r for r in emulator.org.table("Contact").values() if not r["IsDeleted"]]
    assert len(contacts) == 197
    with store.begin() as conn:
        dead = conn.execute(select(dead_letters)).fetchall()
    assert len(dead) == 3 and {d.system for d in dead} == {"crm"}
    codes = sorted(d.details["code"] for d in dead)
    assert codes == ["FIELD_CUSTOM_VALIDATION_EXCEPTION", "REQUIRED_FIELD_MISSING", "STRING_TOO_LONG"]
    errors = " | ".join(d.error for d in dead)
    assert "Required fields are missing: [LastName]" in errors and "Email domain is blocked" in errors
    assert "max length=80" in errors
    writes = [p for m, p in emulator.requests if m == "PATCH" and "composite/sobjects/Contact" in p]
    assert 1 <= len(writes) <= 2
    crm.close()
