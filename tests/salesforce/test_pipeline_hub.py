"""The Salesforce connector as the hub of a real Pipeline (memory spoke, real store): records the
CRM refuses become dead letters with Salesforce's messages; the rest reach the org."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from sqlalchemy import select

from connectors.memory import MemoryConnector
from connectors.salesforce import SalesforceConnector
from core.connector import WriteRequest
from core.store.schema import dead_letters
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.salesforce import ValidationRule
from tests.salesforce.conftest import settings_for
from tests.sync.helpers import MAPPINGS, Clock

ROOT = Path(__file__).resolve().parents[2]


def hub_and_shop(crm: SalesforceConnector, shop: MemoryConnector) -> Systems:
    """The CRM as the hub (the real mapping) and a memory shop spoke, both syncing customers both ways."""
    return Systems(
        hub=System("crm", "salesforce", load_mapping(ROOT / "mappings" / "salesforce.yaml"), {"customer": "both"}, crm),
        spokes={"shop": System("shop", "shopify", load_mapping(MAPPINGS / "shop.yaml"), {"customer": "both"}, shop)},
    )


def test_200_customers_with_3_invalid_give_197_contacts_and_3_dead_letters(store, emulator):
    # Given a shop spoke with 200 customers, 3 of which the org's rules refuse
    emulator.add_rule(
        "Contact",
        ValidationRule(lambda r: (r.get("Email") or "").endswith("@blocked.test"), "Email domain is blocked", "Email"),
    )
    crm = SalesforceConnector("crm", settings_for(emulator))
    shop = MemoryConnector("shop")
    pipeline = Pipeline(store, hub_and_shop(crm, shop), clock=Clock())
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


def test_a_retried_write_reads_its_record_back_first_so_an_edit_made_inside_the_read_lag_survives(store, emulator):
    # Given a customer synced from the shop to the CRM, on an org whose clock is the real one
    from datetime import UTC, datetime

    emulator.org.clock = lambda: datetime.now(UTC).replace(microsecond=0)
    crm = SalesforceConnector("crm", settings_for(emulator))  # reads stop 2 s behind now (read_lag_seconds)
    shop = MemoryConnector("shop")
    clock = Clock()
    pipeline = Pipeline(store, hub_and_shop(crm, shop), clock=clock)
    sid = shop.system.put("customer", {"firstName": "Ola", "lastName": "Nowak", "email": "ola.retry@example.pl"})
    pipeline.poll("shop", "customer")
    pipeline.drain()
    time.sleep(2.1)  # the contact's creation is older than the read lag
    pipeline.poll("crm", "customer")
    (contact_id,) = [k for k, r in emulator.org.table("Contact").items() if not r["IsDeleted"]]
    # When the shop renames her, and the CRM cannot lock the record (UNABLE_TO_LOCK_ROW: retried later)
    shop.system.edit("customer", sid, firstName="Ola Maria")
    pipeline.poll("shop", "customer")
    emulator.faults.lock_next = 1
    pipeline.flush("crm")
    assert emulator.org.table("Contact")[contact_id]["FirstName"] == "Ola"  # not written: to be retried
    # and meanwhile an agent edits her name in the CRM: too recent for a poll to see yet
    emulator.org.update("Contact", contact_id, {"FirstName": "Aleksandra"})
    clock.advance(60)
    pipeline.flush("crm")
    # Then the retry did not overwrite the agent's edit: it was read back by id and merged first
    assert emulator.org.table("Contact")[contact_id]["FirstName"] == "Aleksandra"


def test_a_create_whose_answer_was_lost_is_read_back_by_external_id_so_an_edit_made_meanwhile_survives(store, emulator):
    # Given an org on the real clock (reads stop 2 s behind now) that carries out the next call but
    # answers after the connector's timeout
    from datetime import UTC, datetime

    emulator.org.clock = lambda: datetime.now(UTC).replace(microsecond=0)
    crm = SalesforceConnector("crm", settings_for(emulator, timeout=0.5))
    shop = MemoryConnector("shop")
    clock = Clock()
    pipeline = Pipeline(store, hub_and_shop(crm, shop), clock=clock)
    shop.system.put("customer", {"firstName": "Ola", "lastName": "Nowak", "email": "ola.lost@example.pl"})
    pipeline.poll("shop", "customer")
    crm.read_changes("customer", None)  # logged in, so the next call is the create
    emulator.faults.stall_next(1, 1.5)
    # and an agent who renames the contact as soon as it exists, while the create's answer is late
    edited = threading.Event()

    def agent() -> None:
        while not edited.is_set():
            with emulator.org.lock:
                ids = [k for k, r in emulator.org.table("Contact").items() if not r["IsDeleted"]]
            if ids:
                emulator.org.update("Contact", ids[0], {"FirstName": "Aleksandra"})
                edited.set()
            time.sleep(0.01)

    editor = threading.Thread(target=agent, daemon=True)
    editor.start()
    # When the create times out (no native id for it yet) and is retried after its back-off
    pipeline.read_before_write = False  # so the late answer is the create's, not the poll's before it
    result = pipeline.flush("crm")
    assert result.failed == 1
    assert edited.wait(10)
    editor.join()
    pipeline.read_before_write = True
    clock.advance(60)
    pipeline.flush("crm")
    pipeline.drain()
    # Then the retry did not overwrite the agent's edit: it was read back by external id and merged
    (contact,) = [r for r in emulator.org.table("Contact").values() if not r["IsDeleted"]]
    assert contact["FirstName"] == "Aleksandra"
    (customer,) = shop.system.live("customer").values()
    assert customer["firstName"] == "Aleksandra"
    crm.close()


def test_the_orgs_api_usage_is_exported_as_a_metric(store, emulator):
    # Given the hub connector after a few calls (each answer carries Sforce-Limit-Info)
    from prometheus_client import generate_latest

    from core.metrics import registry_for

    emulator.daily_limit = 400
    crm = SalesforceConnector("crm", settings_for(emulator))
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(ROOT / "mappings" / "salesforce.yaml"), {"customer": "both"}, crm),
        spokes={},
    )
    pipeline = Pipeline(store, systems, clock=Clock())
    for i in range(3):
        crm.write("customer", [WriteRequest(f"00000000-0000-4000-8000-{i:012d}", None, {"LastName": f"N{i}"})])
    # When Prometheus scrapes the process
    text = generate_latest(registry_for(pipeline)).decode()
    # Then the quota gauge is the org's own count over its allocation, as the header said
    assert emulator.api_used == 3
    assert 'synchub_api_quota_used_ratio{system="crm"} 0.0075' in text
    assert 'synchub_api_calls_total{system="crm"} 3.0' in text
    crm.close()
