"""The operations the dashboard and the CLI share, on both stores: dead letters (edit, replay,
discard with an audit trail), conflicts resolved all the way into the systems, merge decisions,
the overview, metrics from the store, and a backfill from the beginning."""

from __future__ import annotations

import pytest

from core import metrics
from core.sync import operations as ops
from core.sync.trace import trace
from tests.ops.helpers import BLOCKED_DOMAIN, ops_deployment


def test_an_ingest_dead_letter_edited_and_replayed_reaches_the_crm(store):
    d = ops_deployment(store)
    # Given a shop customer whose e-mail cannot be mapped
    nid = d.shop.system.put("customer", {"firstName": "Anna", "lastName": "Nowak", "email": "anna.at.example.pl"})
    d.pipeline.drain()
    [dead] = ops.list_dead_letters(store)
    assert (dead.stage, dead.system, dead.native_id) == ("ingest", "shop", nid)
    assert d.crm.system.live("customer") == {}
    # When an operator fixes the payload and replays it
    fixed = {**dead.payload, "email": "anna@example.pl"}
    done = ops.edit_and_replay(d.pipeline, dead.id, fixed, actor="ola")
    d.pipeline.drain()
    # Then the record reached the CRM, the dead letter is closed, and the audit says who did what
    assert done.outcome == "ingested"
    assert [c["email"] for c in d.crm.system.live("customer").values()] == ["anna@example.pl"]
    assert ops.list_dead_letters(store) == []
    assert ops.get_dead_letter(store, dead.id).status == "replayed"
    trail = ops.audit_trail(store, target=f"dead_letter:{dead.id}")
    assert [(a.actor, a.action) for a in trail] == [("ola", "replay"), ("ola", "edit")]
    assert trail[1].details == {"changed_keys": ["email"]}
    # and editing a closed one is refused
    with pytest.raises(ops.OperationError, match="not open"):
        ops.edit_and_replay(d.pipeline, dead.id, fixed, actor="ola")


def test_an_outbox_dead_letter_edited_and_replayed_is_written(store):
    d = ops_deployment(store)
    # Given a CRM customer the shop refuses (blocked e-mail domain)
    d.crm.system.put("customer", {"first_name": "Jan", "last_name": "Kos", "email": f"jan@{BLOCKED_DOMAIN}"})
    d.pipeline.drain()
    [dead] = ops.list_dead_letters(store, system="shop")
    assert dead.stage == "outbox" and dead.error_kind == "RecordRejected"
    flows = {(f.system, f.entity): f for f in ops.overview(d.pipeline)}
    assert flows[("shop", "customer")].dead_letters == 1
    assert flows[("shop", "customer")].state in ("failing", "degraded")
    # When the payload is edited to an address the shop takes, and replayed
    ops.edit_and_replay(d.pipeline, dead.id, {**dead.payload, "email": "jan@example.pl"}, actor="ola")
    d.pipeline.drain()
    # Then the shop has the record
    assert [c["email"] for c in d.shop.system.live("customer").values()] == ["jan@example.pl"]
    assert ops.overview(d.pipeline) and ops.list_dead_letters(store, system="shop") == []


def test_discard_needs_a_reason_and_keeps_it(store):
    d = ops_deployment(store)
    d.shop.system.put("customer", {"firstName": "A", "email": "not-an-email"})
    d.pipeline.drain()
    [dead] = ops.list_dead_letters(store)
    with pytest.raises(ops.OperationError, match="reason"):
        ops.discard_dead_letters(store, [dead.id], reason="  ", actor="ola", now=d.pipeline.clock())
    assert ops.discard_dead_letters(store, [dead.id], reason="test record", actor="ola", now=d.pipeline.clock()) == 1
    again = ops.get_dead_letter(store, dead.id)
    assert (again.status, again.reason) == ("discarded", "test record")
    assert [(a.action, a.details) for a in ops.audit_trail(store)] == [("discard", {"reason": "test record"})]
    # discarding twice changes nothing
    assert ops.discard_dead_letters(store, [dead.id], reason="again", actor="ola", now=d.pipeline.clock()) == 0


def test_a_resolved_conflict_reaches_every_system(store):
    d = ops_deployment(store)
    # Given one customer in step in the CRM and the shop
    crm_id = d.crm.system.put("customer", {"first_name": "Ewa", "email": "ewa@example.pl", "note": "base"})
    d.pipeline.drain()
    [shop_id] = d.shop.system.live("customer")
    # When both change the note (owner rule: manual)
    d.crm.system.edit("customer", crm_id, note="from crm")
    d.shop.system.edit("customer", shop_id, note="from shop")
    d.pipeline.drain()
    [conflict] = ops.list_conflicts(store)
    assert conflict.field == "note" and conflict.rule == "manual"
    assert {conflict.golden.value, conflict.incoming.value} == {"from crm", "from shop"}
    # Then an operator's typed value becomes the golden value and reaches both systems
    rows = ops.resolve_conflict(d.pipeline, conflict.id, "value", value="agreed", actor="ola")
    assert rows >= 1
    d.pipeline.drain()
    assert d.crm.system.get("customer", crm_id)["note"] == "agreed"
    assert d.shop.system.get("customer", shop_id)["note"] == "agreed"
    [record] = trace(store, "customer", "ewa@example.pl")
    assert record.data["note"] == "agreed"
    note = next(f for f in record.fields if f.field == "note")
    assert (note.source_system, note.rule) == ("operator", "manual")
    assert ops.list_conflicts(store) == []
    assert ops.get_conflict(store, conflict.id).resolution == {"choice": "value", "value": "agreed", "by": "ola"}
    with pytest.raises(ops.OperationError, match="already"):
        ops.resolve_conflict(d.pipeline, conflict.id, "golden", actor="ola")


def test_merging_a_candidate_links_its_system_ids_to_the_existing_person(store):
    d = ops_deployment(store)
    # Given two people: one known by phone (shop), one by loyalty card (CRM)
    d.shop.system.put("customer", {"firstName": "Ala", "email": "ala@example.pl", "phone": "600100200"})
    d.crm.system.put("customer", {"first_name": "Olek", "email": "olek@example.pl", "loyalty_card": "L-77"})
    d.pipeline.drain()
    # and a POS customer matching both: never merged silently
    pos_id = d.pos.system.put("customer", {"name": "Ala", "phone": "600 100 200", "card": "L-77"})
    d.pipeline.drain()
    [candidate] = ops.list_merge_candidates(store)
    ala = next(cid for cid, data in candidate.records.items() if data.get("emails") == ["ala@example.pl"])
    crm_before = len(d.crm.system.live("customer"))
    # When the operator merges the new record into Ala
    ops.decide_merge(d.pipeline, candidate.id, "merge", into=ala, actor="ola")
    d.pipeline.drain()
    # Then the POS record is Ala's, and the duplicate the CRM got is gone
    [record] = [r for r in trace(store, "customer", "ala@example.pl")]
    assert record.canonical_id == ala and record.native_ids["pos"] == pos_id
    assert len(d.crm.system.live("customer")) == crm_before - 1
    assert ops.list_merge_candidates(store) == []
    assert ops.audit_trail(store)[0].action == "merge"


def test_keep_apart_closes_the_candidate(store):
    d = ops_deployment(store)
    d.shop.system.put("customer", {"firstName": "Ala", "email": "ala@example.pl", "phone": "600100200"})
    d.crm.system.put("customer", {"first_name": "Olek", "email": "olek@example.pl", "loyalty_card": "L-77"})
    d.pipeline.drain()
    d.pos.system.put("customer", {"name": "Ala", "phone": "600100200", "card": "L-77"})
    d.pipeline.drain()
    [candidate] = ops.list_merge_candidates(store)
    ops.decide_merge(d.pipeline, candidate.id, "keep_apart", actor="ola")
    assert ops.list_merge_candidates(store) == []
    assert ops.list_merge_candidates(store, status="kept_apart")[0].id == candidate.id


def test_metrics_are_read_from_the_store(store):
    d = ops_deployment(store)
    d.crm.system.put("customer", {"first_name": "Jan", "email": f"jan@{BLOCKED_DOMAIN}"})
    d.crm.system.put("customer", {"first_name": "Ada", "email": "ada@example.pl"})
    d.pipeline.drain()
    text = metrics.render(metrics.registry_for(d.pipeline)).decode()
    assert 'synchub_dead_letters{entity="customer",stage="outbox",system="shop"} 1.0' in text
    assert 'synchub_changes_total{direction="out",entity="customer",outcome="written",system="shop"} 1.0' in text
    assert 'synchub_changes_total{direction="in",entity="customer",outcome="applied",system="crm"} 2.0' in text
    assert 'synchub_api_calls_total{system="shop"}' in text
    assert "synchub_sync_lag_seconds" in text and "synchub_outbox_pending" in text


def test_backfill_reads_from_the_beginning_and_is_idempotent(store):
    d = ops_deployment(store)
    for i in range(23):
        d.pos.system.put("customer", {"name": f"P{i}", "phone": f"6001002{i:02d}", "card": f"C{i}"})
    pages = []
    progress = ops.backfill(d.pipeline, "pos", "customer", page_size=10, on_page=lambda p: pages.append(p.read))
    assert progress.read == 23 and pages == [10, 20, 23]
    assert progress.outcomes == {"applied": 23}
    again = ops.backfill(d.pipeline, "pos", "customer", page_size=10)
    assert again.outcomes == {"unchanged": 23}
    with pytest.raises(ops.OperationError, match="does not send"):
        ops.backfill(d.pipeline, "crm", "stock_level")


def test_webhooks_not_yet_ingested_are_counted_as_waiting_from_the_inbox(store):
    # Given two webhooks from the shop landed in the inbox and not yet ingested
    d = ops_deployment(store)
    for n in range(2):
        assert d.pipeline.accept("shop", "customer", f"evt-{n}", {"id": f"{n}", "email": f"p{n}@example.pl"})
    # Then the overview and /metrics count them as waiting, read from the inbox (on SQLite its own file)
    flows = {(f.system, f.entity): f for f in ops.overview(d.pipeline)}
    assert flows[("shop", "customer")].inbox_pending == 2
    text = metrics.render(metrics.registry_for(d.pipeline)).decode()
    assert 'synchub_inbox_pending{entity="customer",system="shop"} 2.0' in text
    # and once ingested, nothing waits
    assert d.pipeline.process_inbox() == 2
    assert {(f.system, f.entity): f for f in ops.overview(d.pipeline)}[("shop", "customer")].inbox_pending == 0
