"""Reconciliation finds drift that no change announced, and repairs it through the normal pipeline."""

from __future__ import annotations

from sqlalchemy import func, select

from core.errors import RecordRejected
from core.store.schema import outbox
from core.sync.reconcile import reconcile
from tests.sync.helpers import Deployment, deployment


def synced(store) -> tuple[Deployment, str]:
    """A deployment with one customer in the CRM and the shop, in step."""
    d = deployment(store)
    nid = d.shop.system.put(
        "customer", {"firstName": "Ewa", "lastName": "Lis", "email": "ewa@example.pl", "address": {"city": "Gdańsk"}}
    )
    d.pipeline.drain()
    assert len(d.crm.system.live("customer")) == 1
    return d, nid


def crm_record(d: Deployment) -> dict:
    [record] = d.crm.system.live("customer").values()
    return record


def pending_writes(d: Deployment) -> int:
    with d.pipeline.store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(outbox).where(outbox.c.status == "pending")).scalar())


def test_a_system_in_step_needs_no_repair_and_costs_no_writes(store):
    d, _ = synced(store)
    report = reconcile(d.pipeline, "shop", "customer")
    assert (report.scanned, report.in_step, report.repaired, report.missing) == (1, 1, 0, 0)
    assert pending_writes(d) == 0
    hub = reconcile(d.pipeline, "crm", "customer")
    assert (hub.scanned, hub.in_step, hub.repaired) == (1, 1, 0)


def test_an_edit_nobody_announced_is_found_and_reaches_the_hub(store):
    d, nid = synced(store)
    # an admin edits the shop record by hand while synchub is down: no webhook, and the poll cursor
    # is already past it (the edit happens "in place", as systems that do not bump a timestamp do)
    d.shop.system.table("customer")[nid].data["lastName"] = "Lis-Kowalska"
    assert d.pipeline.drain() == 0  # the ordinary sync cannot see it
    report = reconcile(d.pipeline, "shop", "customer")
    assert (report.drifted, report.examples["drifted"]) == (1, [nid])
    d.pipeline.drain()
    assert crm_record(d)["last_name"] == "Lis-Kowalska"


def test_a_write_that_never_arrived_is_sent_again(store):
    d, nid = synced(store)
    # the CRM changes the city; the shop refuses it and nobody replays the dead letter
    [contact_id] = d.crm.system.live("customer")
    d.shop.fail[d.xrefs_by_native("shop", nid)] = [RecordRejected("temporarily invalid", code="X")]
    d.crm.system.edit("customer", contact_id, city="Sopot")
    d.pipeline.drain()
    assert d.shop.system.get("customer", nid)["address"]["city"] == "Gdańsk"
    # reconciliation sees the shop behind the golden record and queues the write again
    report = reconcile(d.pipeline, "shop", "customer")
    assert report.behind == 1
    d.pipeline.drain()
    assert d.shop.system.get("customer", nid)["address"]["city"] == "Sopot"


def test_a_record_the_hub_never_heard_of_is_ingested(store):
    d, _ = synced(store)
    # a record created while the webhook endpoint was unreachable
    d.shop.system.put("customer", {"firstName": "Olek", "lastName": "Bór", "email": "olek@example.pl"})
    report = reconcile(d.pipeline, "shop", "customer")
    assert (report.new, report.in_step) == (1, 1)
    d.pipeline.drain()
    assert sorted(r["first_name"] for r in d.crm.system.live("customer").values()) == ["Ewa", "Olek"]


def test_a_missing_record_is_reported_and_recreated_only_when_asked(store):
    d, nid = synced(store)
    del d.shop.system.table("customer")[nid]  # gone from the shop, no deletion event
    report = reconcile(d.pipeline, "shop", "customer")
    assert (report.missing, report.recreated, report.examples["missing"]) == (1, 0, [nid])
    assert pending_writes(d) == 0
    report = reconcile(d.pipeline, "shop", "customer", recreate_missing=True)
    assert (report.missing, report.recreated) == (1, 1)
    d.pipeline.drain()
    [again] = d.shop.system.live("customer").values()
    assert (again["lastName"], again["address"]["city"]) == ("Lis", "Gdańsk")
    assert reconcile(d.pipeline, "shop", "customer").in_step == 1


def test_a_dry_run_reports_and_changes_nothing(store):
    d, nid = synced(store)
    d.shop.system.table("customer")[nid].data["lastName"] = "Inna"
    before = d.golden(d.only_cid())
    report = reconcile(d.pipeline, "shop", "customer", dry_run=True)
    assert report.drifted == 1 and report.dry_run
    assert d.golden(d.only_cid()) == before
    assert pending_writes(d) == 0
    d.pipeline.drain()
    assert crm_record(d)["last_name"] == "Lis"


def test_a_receive_only_system_is_put_back_to_the_masters_values(store):
    d = deployment(store)
    d.erp.system.put("stock_level", {"code": "SKU-1", "quantity": "12"})
    d.pipeline.drain()
    [(shop_sid, level)] = d.shop.system.live("stock_level").items()
    assert level["available"] == "12"
    d.shop.system.table("stock_level")[shop_sid].data["available"] = "99"  # edited by hand in the shop
    report = reconcile(d.pipeline, "shop", "stock_level")
    assert report.behind == 1
    d.pipeline.drain()
    assert d.shop.system.get("stock_level", shop_sid)["available"] == "12"
    assert reconcile(d.pipeline, "shop", "stock_level").in_step == 1
