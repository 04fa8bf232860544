"""`synchub demo --once`: the day completes and its summary agrees with the store and the systems."""

from __future__ import annotations

from rich.console import Console
from sqlalchemy import func, select
from typer.testing import CliRunner

from core.store.db import Store
from core.store.schema import dead_letters, golden, inbox, outbox
from sandbox.demo.day import run
from sandbox.demo.seed import retailer
from workers.cli import app


def test_the_day_completes_and_its_summary_matches_the_store_and_the_systems():
    result = run(40, once=True, console=Console(record=True, width=120))
    s, facts = result.summary, result.facts
    store = Store(result.store_url, migrate_schema=False)
    try:
        with store.begin() as conn:

            def count(table, *where):
                return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar())

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
    finally:
        store.close()
    # the summary is the store's
    assert s.customers == customers
    assert sum(s.orders_by_channel.values()) == orders
    assert s.shipments == shipments
    assert s.dead_letters.get("replayed", 0) == replayed >= 1  # the malformed webhook, fixed and replayed
    assert s.dead_letters.get("open", 0) == open_letters == 0
    assert s.lost == pending == 0
    assert (s.returns, s.complaints) == (returns, complaints) == (1, 1)  # by phone, in the CRM
    # and the store's is what the systems hold: one CRM contact per golden customer, one InPost
    # parcel per locker order and per approved return, one shop fulfilment per locker order (the
    # click & collect order has neither), every shipment in the CRM
    assert facts.crm_contacts == customers
    assert facts.crm_orders == orders == s.orders_by_channel.get("web")
    assert facts.inpost_shipments == shipments == facts.locker_orders + facts.inpost_returns
    assert facts.inpost_returns == returns
    assert facts.shop_fulfilments == facts.locker_orders == orders - 1
    assert facts.crm_shipments == shipments
    assert s.touchpoints_by_channel.get("locker", 0) >= shipments  # a pickup notice per parcel at least
    # every person the seed put in more than one channel (shop, till, CRM) was joined, and nobody else
    world = retailer(40)
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


def test_the_demo_command_is_there():
    answer = CliRunner().invoke(app, ["demo", "--help"])
    assert answer.exit_code == 0 and "--once" in answer.output
