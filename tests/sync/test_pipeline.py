"""The sync pipeline end to end over real stores (SQLite and PostgreSQL) and memory connectors.

Each test reads Given / When / Then. ``drain()`` polls every system, processes the inbox and
flushes every outbox until nothing moves — what the workers do continuously in production.
"""

from __future__ import annotations

from sqlalchemy import func, select

from connectors.memory import EXTERNAL_ID
from core.connector import WriteResult
from core.errors import RecordRejected, TransientError
from core.store.schema import conflicts, dead_letters, merge_candidates, outbox, xref
from tests.sync.helpers import deployment


def only(items):
    items = list(items)
    assert len(items) == 1, items
    return items[0]


def test_one_person_from_shop_and_pos_becomes_one_golden_record(store):
    # Given a shop customer with an upper-case email, and a POS customer with the same phone locally written
    d = deployment(store)
    shop_id = d.shop.system.put(
        "customer",
        {"firstName": "Anna", "lastName": "Nowak", "email": "ANNA.NOWAK@EXAMPLE.PL", "phone": "+48 600 100 200"},
    )
    pos_id = d.pos.system.put("customer", {"name": "Anna", "phone": "600-100-200", "card": "LOY-77"})
    # When both are ingested
    r1 = d.pipeline.ingest("shop", "customer", d.shop.system.get("customer", shop_id))
    r2 = d.pipeline.ingest("pos", "customer", d.pos.system.get("customer", pos_id))
    # Then there is one golden record with both cross-references
    assert r1.canonical_id == r2.canonical_id
    assert d.golden_count() == 1
    assert d.xrefs(r1.canonical_id) == {"shop": shop_id, "pos": pos_id}
    data = d.golden(r1.canonical_id)
    assert data["emails"] == ["anna.nowak@example.pl"]
    assert data["phones"] == ["+48600100200"]
    assert data["loyalty_ids"] == ["LOY-77"]


def test_a_shop_customer_reaches_the_crm_once_and_nothing_echoes(store):
    d = deployment(store)
    nid = d.shop.system.put("customer", {"firstName": "Jan", "lastName": "Kowalski", "email": "jan@example.pl"})
    d.pipeline.drain()
    ((contact_id, contact),) = d.crm.system.live("customer").items()
    assert contact["first_name"] == "Jan" and contact["email"] == "jan@example.pl"
    # the CRM record carries the canonical id (its external id), and the cross-reference knows both
    assert d.xrefs(contact[EXTERNAL_ID]) == {"shop": nid, "crm": contact_id}
    # the shop, where the change came from, is not written back, and a second drain does nothing
    assert d.shop.writes == []
    assert d.pipeline.drain() == 0
    assert len(d.crm.writes) == 1
    assert list(d.shop.system.live("customer")) == [nid]


def test_a_crm_edit_reaches_the_shop_and_the_write_does_not_echo(store):
    d = deployment(store)
    d.shop.system.put("customer", {"firstName": "Jan", "lastName": "Kowalski", "email": "jan@example.pl"})
    d.pipeline.drain()
    contact_id = only(d.crm.system.live("customer"))
    # When the CRM user fixes the last name
    d.crm.system.edit("customer", contact_id, last_name="Kowalski-Nowak")
    d.pipeline.drain()
    # Then the shop has it, written exactly once, and the CRM was not written again
    assert only(d.shop.system.live("customer").values())["lastName"] == "Kowalski-Nowak"
    assert len(d.shop.writes) == 1
    assert len(d.crm.writes) == 1
    assert d.pipeline.drain() == 0


def test_both_sides_edit_a_hub_owned_field_the_crm_wins_and_the_conflict_is_kept(store):
    d = deployment(store)
    shop_id = d.shop.system.put("customer", {"firstName": "Jan", "lastName": "Kowalski", "email": "jan@example.pl"})
    d.pipeline.drain()
    contact_id = only(d.crm.system.live("customer"))
    # When both change the first name before the next sync, the CRM first
    d.crm.system.edit("customer", contact_id, first_name="Janusz")
    d.shop.system.edit("customer", shop_id, firstName="Johnny")
    d.pipeline.drain()
    # Then the CRM's value wins everywhere, and the conflict is recorded with both values and the rule
    assert d.crm.system.get("customer", contact_id)["first_name"] == "Janusz"
    assert d.shop.system.get("customer", shop_id)["firstName"] == "Janusz"
    with store.begin() as conn:
        row = only(conn.execute(select(conflicts)).fetchall())
    assert (row.field, row.rule, row.status) == ("first_name", "hub", "resolved")
    assert {row.hub_value, row.incoming_value} == {"Janusz", "Johnny"}


def test_newest_rule_takes_the_later_edit(store):
    d = deployment(store)
    shop_id = d.shop.system.put(
        "customer", {"firstName": "Ola", "email": "ola@example.pl", "address": {"city": "Kraków"}}
    )
    d.pipeline.drain()
    contact_id = only(d.crm.system.live("customer"))
    d.shop.system.edit("customer", shop_id, address={"city": "Gdańsk"})
    d.crm.system.edit("customer", contact_id, city="Poznań")  # later than the shop's edit
    d.pipeline.drain()
    assert d.crm.system.get("customer", contact_id)["city"] == "Poznań"
    assert d.shop.system.get("customer", shop_id)["address"]["city"] == "Poznań"


def test_union_rule_keeps_both_sides_tags(store):
    d = deployment(store)
    shop_id = d.shop.system.put("customer", {"firstName": "Ola", "email": "ola@example.pl", "tags": ["web"]})
    d.pipeline.drain()
    contact_id = only(d.crm.system.live("customer"))
    d.shop.system.edit("customer", shop_id, tags=["web", "newsletter"])
    d.crm.system.edit("customer", contact_id, tags=["web", "vip"])
    d.pipeline.drain()
    assert sorted(d.crm.system.get("customer", contact_id)["tags"]) == ["newsletter", "vip", "web"]
    assert sorted(d.shop.system.get("customer", shop_id)["tags"]) == ["newsletter", "vip", "web"]


def test_an_unsubscribe_wins_over_an_older_opt_in_whatever_the_owner(store):
    d = deployment(store)
    shop_id = d.shop.system.put("customer", {"firstName": "Ola", "email": "ola@example.pl", "acceptsMarketing": True})
    d.pipeline.drain()
    contact_id = only(d.crm.system.live("customer"))
    # the CRM re-confirms the opt-in first, the customer unsubscribes in the shop afterwards
    d.crm.system.edit("customer", contact_id, email_opt_in=True, note="called")
    d.crm.system.edit("customer", contact_id, email_opt_in=True)
    d.shop.system.edit("customer", shop_id, acceptsMarketing=False)
    d.pipeline.drain()
    assert d.crm.system.get("customer", contact_id)["email_opt_in"] is False
    assert d.shop.system.get("customer", shop_id)["acceptsMarketing"] is False


def test_manual_rule_parks_the_conflict_and_keeps_the_hub_value(store):
    d = deployment(store)
    pos_id = d.pos.system.put("customer", {"name": "Ewa", "phone": "601 200 300", "city": "Łódź"})
    d.pipeline.drain()
    contact_id = only(d.crm.system.live("customer"))
    d.crm.system.edit("customer", contact_id, city="Warszawa")
    d.pipeline.drain()
    d.pos.system.edit("customer", pos_id, city="Sopot")
    d.pipeline.drain()
    # the POS mapping says city conflicts are for a person: the hub keeps Warszawa, the conflict waits
    with store.begin() as conn:
        parked = conn.execute(select(conflicts).where(conflicts.c.status == "open")).fetchall()
    assert d.crm.system.get("customer", contact_id)["city"] == "Warszawa"
    assert [(p.field, p.rule, p.incoming_value) for p in parked] == [("addresses.default.city", "manual", "Sopot")]


def test_a_redelivered_event_is_ingested_once(store):
    d = deployment(store)
    record = {"id": "77", "firstName": "Adam", "email": "adam@example.pl", "updated_at": "2026-11-20T08:00:00+00:00"}
    first = d.pipeline.accept("shop", "customer", "evt-1", record)
    second = d.pipeline.accept("shop", "customer", "evt-1", record)
    assert first is not None and second is None
    assert d.pipeline.process_inbox() == 1
    assert d.golden_count() == 1


def test_an_older_event_after_a_newer_one_is_stale(store):
    d = deployment(store)
    newer = {"id": "9", "firstName": "Beata", "email": "b@example.pl", "updated_at": "2026-11-20T10:00:00+00:00"}
    older = {**newer, "firstName": "Beatka", "updated_at": "2026-11-20T09:00:00+00:00"}
    cid = d.pipeline.ingest("shop", "customer", newer).canonical_id
    assert d.pipeline.ingest("shop", "customer", older).outcome == "stale"
    assert d.golden(cid)["first_name"] == "Beata"


def test_two_matching_people_make_a_merge_candidate_not_a_merge(store):
    d = deployment(store)
    a = d.pipeline.ingest("shop", "customer", {"id": "1", "email": "x@example.pl"}).canonical_id
    b = d.pipeline.ingest("pos", "customer", {"id": "2", "phone": "602 000 111"}).canonical_id
    assert a != b
    r = d.pipeline.ingest("shop", "customer", {"id": "3", "email": "x@example.pl", "phone": "+48602000111"})
    assert r.merge_candidate and r.canonical_id not in (a, b)
    with store.begin() as conn:
        cand = only(conn.execute(select(merge_candidates)).fetchall())
    assert sorted(cand.candidates) == sorted([a, b]) and cand.status == "open"
    assert d.golden_count() == 3


def test_a_second_record_of_one_person_in_the_same_system_is_a_merge_candidate_not_a_crash(store):
    # Given a person known to the shop by one record
    d = deployment(store)
    first = d.pipeline.ingest("shop", "customer", {"id": "1", "email": "ola@example.pl"}).canonical_id
    # When the shop sends a second record with the same email (a duplicate account there)
    r = d.pipeline.ingest("shop", "customer", {"id": "2", "email": "ola@example.pl", "firstName": "Ola"})
    # Then it is its own golden record, flagged for a person to merge; the first stays linked as it was
    assert r.outcome == "applied" and r.merge_candidate and r.canonical_id != first
    with store.begin() as conn:
        cand = only(conn.execute(select(merge_candidates)).fetchall())
    assert cand.candidates == [first] and cand.status == "open"
    assert d.xrefs_by_native("shop", "1") == first and d.xrefs_by_native("shop", "2") == r.canonical_id


def test_the_crm_refusing_a_change_dead_letters_it_and_holds_back_the_spokes(store):
    d = deployment(store)
    pos_id = d.pos.system.put("customer", {"name": "Zofia", "phone": "603 111 222", "card": "LOY-1"})
    d.pipeline.ingest("pos", "customer", d.pos.system.get("customer", pos_id))
    with store.begin() as conn:
        cid = conn.execute(select(outbox.c.canonical_id).distinct()).scalar_one()
    d.crm.fail[cid] = [RecordRejected("Phone: invalid for this country", code="FIELD_CUSTOM_VALIDATION_EXCEPTION")]
    d.pipeline.drain()
    with store.begin() as conn:
        dead = only(conn.execute(select(dead_letters)).fetchall())
        statuses = sorted(r.status for r in conn.execute(select(outbox)).fetchall())
    assert dead.stage == "outbox" and dead.system == "crm"
    assert "Phone: invalid for this country" in dead.error
    assert dead.payload["phone"] == "+48603111222"  # the payload is kept for a replay
    assert d.shop.system.live("customer") == {}  # no spoke shows what the master refused
    assert statuses == ["dead", "dropped"]


def test_a_transient_failure_is_retried_after_its_back_off(store):
    d = deployment(store)
    d.shop.system.put("customer", {"firstName": "Piotr", "email": "piotr@example.pl"})
    d.pipeline.poll("shop", "customer")
    with store.begin() as conn:
        cid = conn.execute(select(outbox.c.canonical_id).distinct()).scalar_one()
    d.crm.fail[cid] = [TransientError("503 Service Unavailable", retry_after=30)]
    d.pipeline.drain()
    assert d.crm.system.live("customer") == {}  # waiting: Retry-After is 30 s
    d.clock.advance(31)
    d.pipeline.drain()
    assert only(d.crm.system.live("customer").values())["first_name"] == "Piotr"


def test_erasure_removes_the_person_and_a_resync_cannot_bring_them_back(store):
    d = deployment(store)
    shop_id = d.shop.system.put("customer", {"firstName": "Ela", "email": "ela@example.pl"})
    d.pipeline.drain()
    cid = d.pipeline.ingest("shop", "customer", d.shop.system.get("customer", shop_id)).canonical_id
    assert cid is not None
    assert d.pipeline.erase("customer", cid) == 2  # shop and CRM
    d.pipeline.drain()
    assert d.crm.system.live("customer") == {} and d.shop.system.live("customer") == {}
    assert d.golden(cid) == {}
    # the old shop record, or a new one with the same email, is not resurrected
    again = d.pipeline.ingest("shop", "customer", {"id": shop_id, "email": "ela@example.pl"})
    other = d.pipeline.ingest("shop", "customer", {"id": "new-1", "email": "ELA@example.pl"})
    assert again.outcome == other.outcome == "erased"
    assert d.golden_count() == 1


def test_a_delete_in_a_propagating_system_reaches_the_others(store):
    d = deployment(store)
    shop_id = d.shop.system.put("customer", {"firstName": "Olga", "email": "olga@example.pl"})
    d.pipeline.drain()
    assert len(d.crm.system.live("customer")) == 1
    d.shop.system.delete("customer", shop_id)
    d.pipeline.drain()
    assert d.crm.system.live("customer") == {}


def test_stock_owned_by_the_erp_flows_to_the_shop_without_a_crm_write(store):
    d = deployment(store)
    d.erp.system.put("stock_level", {"code": "SKU-1", "quantity": "12"})
    d.pipeline.drain()
    level = only(d.shop.system.live("stock_level").values())
    assert (level["sku"], level["available"]) == ("SKU-1", "12")
    assert d.crm.writes == []


def test_a_record_that_fails_its_mapping_is_dead_lettered_with_the_field(store):
    d = deployment(store)
    result = d.pipeline.ingest("shop", "customer", {"id": "5", "email": "not-an-email", "firstName": "Kuba"})
    assert result.outcome == "dead"
    with store.begin() as conn:
        dead = only(conn.execute(select(dead_letters)).fetchall())
    assert dead.stage == "ingest" and dead.error_kind == "RecordMappingError"
    assert dead.details["errors"][0]["field"] == "emails[0]"
    assert dead.payload["firstName"] == "Kuba"


def test_a_write_failing_transiently_past_its_max_age_is_dead_lettered(store):
    d = deployment(store)
    d.pipeline.retry.max_age = 3600
    d.shop.system.put("customer", {"firstName": "Iga", "email": "iga@example.pl"})
    d.pipeline.poll("shop", "customer")
    with store.begin() as conn:
        cid = conn.execute(select(outbox.c.canonical_id).distinct()).scalar_one()
    d.crm.fail[cid] = [TransientError("503", retry_after=10) for _ in range(3)]
    d.pipeline.drain()  # first failure: retried later
    d.clock.advance(3601)
    d.pipeline.drain()  # second failure, an hour after the change: given up, kept for replay
    with store.begin() as conn:
        dead = only(conn.execute(select(dead_letters)).fetchall())
    assert dead.stage == "outbox" and dead.attempts == 2 and "503" in dead.error
    assert d.crm.system.live("customer") == {}


def test_a_refused_change_replayed_after_the_fix_reaches_the_crm_then_the_spokes(store):
    from core.sync.replay import replay

    # Given a POS customer the CRM refused, so the shop never saw it
    d = deployment(store)
    pos_id = d.pos.system.put("customer", {"name": "Zofia", "phone": "603 111 222", "card": "LOY-1"})
    d.pipeline.ingest("pos", "customer", d.pos.system.get("customer", pos_id))
    with store.begin() as conn:
        cid = conn.execute(select(outbox.c.canonical_id).distinct()).scalar_one()
    d.crm.fail[cid] = [RecordRejected("Phone: invalid for this country", code="FIELD_CUSTOM_VALIDATION_EXCEPTION")]
    d.pipeline.drain()
    assert d.shop.system.live("customer") == {}
    # When the CRM's rule is fixed and the dead letter replayed
    with store.begin() as conn:
        dead_id = conn.execute(select(dead_letters.c.id)).scalar_one()
    (result,) = replay(d.pipeline, [dead_id])
    d.pipeline.drain()
    # Then the CRM has the customer, and so has the shop (released after the CRM accepted it)
    assert result.outcome == "requeued"
    assert only(d.crm.system.live("customer").values())["phone"] == "+48603111222"
    assert only(d.shop.system.live("customer").values())["phone"] == "+48603111222"
    assert d.golden(cid)["phones"] == ["+48603111222"]


def test_back_off_grows_with_jitter_and_a_systems_hint_wins():
    from core.sync.pipeline import RetryPolicy

    policy = RetryPolicy(base_delay=1.0, max_delay=60.0, jitter=0.25)
    delays = [policy.delay(3, None) for _ in range(200)]
    assert all(4.0 <= d <= 5.0 for d in delays)  # 1 s × 2² stretched by at most a quarter
    assert len({round(d, 6) for d in delays}) > 100  # spread out, not one instant
    assert policy.delay(30, None) == 60.0  # capped
    assert policy.delay(3, 17.5) == 17.5  # Retry-After is obeyed exactly


def test_a_late_event_in_the_same_second_as_our_write_is_checked_against_the_system(store):
    # Given a shop customer in step, whose timestamps (like Shopify's) have one-second precision
    d = deployment(store)
    nid = d.shop.system.put("customer", {"firstName": "Ada", "lastName": "Lis", "email": "ada@example.pl"})
    d.pipeline.drain()
    [(crm_id, _)] = d.crm.system.live("customer").items()
    # When the CRM changes the last name and synchub writes it to the shop
    d.crm.system.edit("customer", crm_id, last_name="Lis-Nowak")
    d.pipeline.drain()
    current = d.shop.system.get("customer", nid)
    assert current["lastName"] == "Lis-Nowak"
    # and then an event from before that write arrives late, carrying the same timestamp
    late = {**current, "lastName": "Lis"}
    result = d.pipeline.ingest("shop", "customer", late)
    # Then synchub asked the shop how the record is now, instead of reverting the CRM's edit
    assert result.outcome == "unchanged"
    d.pipeline.drain()
    assert [r["last_name"] for r in d.crm.system.live("customer").values()] == ["Lis-Nowak"]


def test_the_echo_of_a_write_whose_answer_was_lost_is_not_taken_for_an_edit_in_that_system(store):
    # Given a customer synced between the shop and the CRM
    d = deployment(store)
    sid = d.shop.system.put("customer", {"firstName": "Ala", "email": "ala.echo@example.pl"})
    d.pipeline.drain()
    (crm_id,) = d.crm.system.live("customer")
    # When the shop renames her "Alicja", and the CRM carries the write out but its answer is lost
    d.shop.system.edit("customer", sid, firstName="Alicja")
    d.pipeline.poll("shop", "customer")
    d.crm.lose_answers = 1
    d.pipeline.flush("crm")
    assert d.crm.system.get("customer", crm_id)["first_name"] == "Alicja"  # applied; synchub never heard
    # and the shop renames her again before the write is retried
    d.shop.system.edit("customer", sid, firstName="Ala Maria")
    d.pipeline.poll("shop", "customer")
    # and the CRM is read, bringing back our own unacknowledged "Alicja"
    d.pipeline.poll("crm", "customer")
    # Then that is our echo, not an edit in the CRM: the newer shop value stands, no conflict
    cid = d.only_cid()
    assert d.golden(cid)["first_name"] == "Ala Maria"
    with store.begin() as conn:
        assert conn.execute(select(conflicts)).fetchall() == []
    d.pipeline.drain()
    assert d.crm.system.get("customer", crm_id)["first_name"] == "Ala Maria"
    assert d.shop.system.get("customer", sid)["firstName"] == "Ala Maria"


def test_a_created_record_a_poll_linked_before_the_answer_was_recorded_is_linked_once(store):
    # Given a shop customer on its way to the CRM, and a CRM poll that runs while the create is in
    # flight: it reads the new contact before the create's answer is recorded, and links it by email
    d = deployment(store)
    d.shop.system.put("customer", {"firstName": "Jan", "lastName": "Kowalski", "email": "jan@example.pl"})
    d.pipeline.poll("shop", "customer")
    write = d.crm.write

    def write_then_poll(entity, batch):  # type: ignore[no-untyped-def]
        results = write(entity, batch)
        d.clock.advance(1)
        d.crm.system.edit("customer", results[0].native_id, note="seen")  # a CRM-side stamp to read
        d.pipeline.poll("crm", "customer")
        return results

    d.crm.write = write_then_poll  # type: ignore[method-assign]

    # When the create's answer is recorded
    d.pipeline.drain()

    # Then there is one golden record, linked once to the one contact, and no error
    cid = d.only_cid()
    contact_id = only(d.crm.system.live("customer"))
    assert d.xrefs(cid)["crm"] == contact_id
    with d.pipeline.store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(dead_letters)).scalar() == 0
        assert conn.execute(select(func.count()).select_from(merge_candidates)).scalar() == 0


def test_a_create_answered_with_a_record_another_golden_holds_is_a_merge_candidate_not_a_crash(store):
    # Given two shop customers: Jan, already in the CRM, and Jana, on her way there
    d = deployment(store)
    d.shop.system.put("customer", {"firstName": "Jan", "lastName": "Kowalski", "email": "jan@example.pl"})
    d.pipeline.drain()
    jan_contact = only(d.crm.system.live("customer"))
    d.shop.system.put("customer", {"firstName": "Jana", "lastName": "Nowak", "email": "jana@example.pl"})
    d.pipeline.poll("shop", "customer")
    write = d.crm.write

    def answered_with_jan(entity, batch):  # type: ignore[no-untyped-def]
        # the CRM matched the create to a record it had (a duplicate rule would): Jan's contact
        return [WriteResult(native_id=jan_contact, updated_at=r.updated_at) for r in write(entity, batch)]

    d.crm.write = answered_with_jan  # type: ignore[method-assign]

    # When the create's answer is recorded
    d.pipeline.drain()

    # Then Jan's contact stays Jan's alone, and a person is asked about Jana
    with d.pipeline.store.begin() as conn:
        links = conn.execute(
            select(func.count()).select_from(xref).where(xref.c.system == "crm", xref.c.native_id == jan_contact)
        ).scalar()
        (candidate,) = conn.execute(select(merge_candidates)).fetchall()
    assert links == 1
    assert candidate.keys == [{"kind": "xref", "value": f"crm:{jan_contact}"}]
    assert candidate.status == "open"
