"""`synchub demo --once`: the day completes and its summary agrees with the store and the systems."""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.store.db import Store
from core.store.schema import conflicts, dead_letters, golden, inbox, outbox, xref
from sandbox.demo.day import PAST_SOURCES, Stack, past_buyers, run
from sandbox.demo.seed import retailer
from workers.cli import app

PEOPLE = 40
TODAY_LOCKER_ORDERS = 12


def test_the_day_completes_and_its_summary_matches_the_store_and_the_systems():
    world = retailer(PEOPLE)
    seen: dict[str, Any] = {}

    def while_up(stack: Stack, trace_url: str | None) -> None:
        """While the dashboard is up: the printed trace link works and shows that customer, and
        the CRM holds the shop's unsubscribe."""
        assert trace_url is not None and trace_url.startswith("http://127.0.0.1:")
        page = httpx.get(trace_url, timeout=30)
        seen["trace"] = (page.status_code, page.text)
        opted = next(p for p in world.cross_channel if p.in_shop and p.in_crm and p.marketing_opt_in)
        (contact,) = [c for c in stack.sf.org.table("Contact").values() if str(c.get("Email")).lower() == opted.email]
        seen["opted_out"] = contact.get("HasOptedOutOfEmail")

    console = Console(record=True, width=120)
    result = run(PEOPLE, once=True, console=console, while_up=while_up)
    s, facts = result.summary, result.facts
    printed = console.export_text()
    store = Store(result.store_url, migrate_schema=False)
    try:
        with store.read() as conn, store.inbox.read() as inbox_conn:

            def count(table, *where):
                on = inbox_conn if table is inbox else conn
                return int(on.execute(select(func.count()).select_from(table).where(*where)).scalar())

            customers = count(golden, golden.c.entity == "customer", golden.c.state == "active")
            orders = count(golden, golden.c.entity == "order")
            shipments = count(golden, golden.c.entity == "shipment")
            returns = count(golden, golden.c.entity == "return")
            complaints = count(golden, golden.c.entity == "complaint")
            replayed = count(dead_letters, dead_letters.c.status == "replayed")
            open_letters = count(dead_letters, dead_letters.c.status == "open")
            pending = count(inbox, inbox.c.status == "pending") + count(
                outbox, outbox.c.status.in_(("pending", "held", "inflight"))
            )
            letters = count(dead_letters)
            changes_in, writes_done = count(inbox), count(outbox, outbox.c.status == "done")
            by_rule = dict(conn.execute(select(conflicts.c.rule, func.count()).group_by(conflicts.c.rule)).all())
            address_conflicts = count(conflicts, conflicts.c.field.like("addresses.%"))
            links = dict(
                conn.execute(
                    select(xref.c.system, func.count()).where(xref.c.entity == "customer").group_by(xref.c.system)
                ).all()
            )
    finally:
        store.close()
    # the summary is the store's
    assert s.customers == customers
    assert sum(s.orders_by_channel.values()) == orders
    assert s.shipments == shipments
    assert s.dead_letters.get("replayed", 0) == replayed >= 1  # the malformed webhook, fixed and replayed
    assert s.dead_letters.get("open", 0) == open_letters == 0
    assert s.lost == pending == 0
    assert (s.changes_in, s.writes_done) == (changes_in, writes_done)
    assert s.dead_letters.get("replayed", 0) == sum(s.dead_letters.values()) == letters
    assert s.conflicts_by_rule == by_rule and address_conflicts >= 1  # the address edited on both sides
    assert s.customer_links == links == {"crm": customers, "shop_pl": customers, "erp": customers}
    assert (s.returns, s.complaints) == (returns, complaints) == (1, 1)  # by phone, in the CRM
    # and the store's is what the systems hold: one CRM contact per golden customer, one InPost
    # parcel per locker order and per approved return, one shop fulfilment per locker order (the
    # click & collect order has neither), every shipment in the CRM
    assert facts.crm_contacts == customers
    # orders per channel are the shop's: today's locker orders and the click & collect one on the web,
    # last month's from the online store and the Shop app
    past = [PAST_SOURCES[n % len(PAST_SOURCES)] for n in range(len(past_buyers(world)))]
    assert s.orders_by_channel == {
        "web": TODAY_LOCKER_ORDERS + 1 + past.count("web"),
        "app": past.count("iphone") + past.count("android"),
    }
    assert facts.crm_orders == orders
    assert facts.inpost_shipments == shipments == facts.locker_orders + facts.inpost_returns
    assert facts.inpost_returns == returns
    assert facts.shop_fulfilments == facts.locker_orders == TODAY_LOCKER_ORDERS  # past ones were couriered
    assert facts.crm_shipments == shipments
    assert s.touchpoints_by_channel.get("locker", 0) >= shipments  # a pickup notice per parcel at least
    # InPost's burst of 429s was waited out: every one answered, every locker order shipped once
    assert s.throttled == {"lockers": 4}
    # every person the seed put in more than one channel (shop, till, CRM) was joined, and nobody else
    assert s.cross_channel == len(world.cross_channel) > 0
    assert customers == len(world.people)  # one golden record per person
    # the ERP (a real trytond) holds the same story: a party per customer, a sale per web order, the
    # complaint taken by phone; the ticket at the till is in the CRM's timeline and took the shop's
    # stock down with the ERP's
    assert facts.erp_parties == customers
    assert facts.erp_sales == orders
    assert facts.erp_complaints == complaints == 1
    assert facts.crm_store_tasks == s.touchpoints_by_channel.get("store", 0) == 1
    before, after = facts.shop_stock_at_till
    assert before is not None and after == before - 2
    # the unsubscribe in the shop won over the CRM's older opt-in
    assert seen["opted_out"] is True
    # the printed link to one customer's trace works while the dashboard is up, and shows that customer
    status, html = seen["trace"]
    traced = world.cross_channel[0]
    assert status == 200 and traced.email in html and traced.last_name in html
    assert f"/trace?q={traced.email}" in printed
    # the narrated summary says what the issue asks for
    for line in (
        "customers unified",
        "cross-channel matches",
        "orders synced, by channel",
        "shipments created",
        "conflicts, by rule",
        "dead letters",
        "1 created, 1 replayed, 0 open",
        "429s waited out",
        "nothing lost",
        "[email]: not a valid email address",  # the dead letter's reason, as stored
        "→ rule hub keeps 'Sopot'",  # the address conflict and what its rule kept
    ):
        assert line in " ".join(printed.split()), line  # as read, whatever the terminal's width wrapped
    assert "Running without the ERP" not in printed


def test_the_demo_command_is_there():
    answer = CliRunner().invoke(app, ["demo", "--help"])
    assert answer.exit_code == 0 and "--once" in answer.output
