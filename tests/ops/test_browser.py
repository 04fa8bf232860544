"""End to end in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright): the
dashboard served by uvicorn on 127.0.0.1, over a real store and memory systems, with a worker
thread draining the pipeline as the workers would.

* find a failed record from the overview, fix its payload, replay it, see it succeed and the
  overview's counters change by themselves;
* resolve a conflict by typing a value, and see it reach the CRM and the shop.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from core.store.db import Store
from core.web import create_app
from core.web.server import ServerThread
from tests.conftest import wait_for
from tests.ops.helpers import OpsDeployment, ops_deployment

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class Worker:
    """Drains the pipeline in a thread, like the workers: poll, ingest, flush, until stopped."""

    def __init__(self, d: OpsDeployment) -> None:
        self.d = d
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.d.pipeline.drain()
            except BaseException as exc:  # surfaced by the test, not lost in the thread
                self.errors.append(exc)
                return
            self.stop.wait(0.1)


@dataclass
class Live:
    d: OpsDeployment
    url: str
    worker: Worker


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    d = ops_deployment(store)
    server = ServerThread(create_app(d.pipeline, refresh_seconds=0.5)).start()
    worker = Worker(d)
    worker.thread.start()
    running = Live(d, server.url, worker)
    yield running
    running.worker.stop.set()
    running.worker.thread.join(10)
    server.stop()
    store.close()
    assert not worker.errors and not running.worker.errors, [*worker.errors, *running.worker.errors]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


def test_fix_a_failed_record_replay_it_and_watch_the_counters(live: Live, browser: Browser):
    d = live.d
    # Given a shop customer whose e-mail the mapping refuses, and one that synced fine
    d.shop.system.put("customer", {"firstName": "Ewa", "lastName": "Lis", "email": "ewa.lis.at.example.pl"})
    d.shop.system.put("customer", {"firstName": "Jan", "lastName": "Kos", "email": "jan@example.pl"})
    assert wait_for(lambda: len(d.crm.system.live("customer")) == 1, 20)
    context = browser.new_context()
    overview: Page = context.new_page()
    # When the operator opens the overview
    overview.goto(live.url + "/")
    shop_row = overview.locator('tr[data-flow="shop/customer"]')
    expect(shop_row.locator('[data-col="dead"]')).to_have_text("1")
    expect(overview.get_by_test_id("total-dead")).to_have_text("1")
    expect(shop_row.locator(".state")).to_have_text(re.compile("degraded|failing"))
    # and follows the dead-letter count to the failed record, in a second tab
    work = context.new_page()
    work.goto(live.url + "/")
    work.locator('tr[data-flow="shop/customer"] [data-col="dead"] a').click()
    expect(work.get_by_test_id("deadletters")).to_contain_text("MappingError")
    work.locator("table[data-testid=deadletters] tbody tr a").first.click()
    expect(work.get_by_test_id("dl-error")).to_contain_text("email")
    payload = work.get_by_test_id("payload")
    text = payload.input_value()
    assert "ewa.lis.at.example.pl" in text
    # fixes the payload and replays it
    payload.fill(text.replace("ewa.lis.at.example.pl", "ewa.lis@example.pl"))
    work.get_by_test_id("edit-replay").click()
    # Then the page says it was replayed and the record reaches the CRM
    expect(work.get_by_role("status")).to_contain_text("edited and replayed: ingested")
    expect(work.get_by_test_id("dl-status")).to_have_text("replayed")
    assert wait_for(lambda: len(d.crm.system.live("customer")) == 2, 20)
    assert sorted(c["email"] for c in d.crm.system.live("customer").values()) == [
        "ewa.lis@example.pl",
        "jan@example.pl",
    ]
    # and the overview left open in the first tab updates its counters by itself
    expect(overview.get_by_test_id("total-dead")).to_have_text("0", timeout=10_000)
    expect(shop_row.locator('[data-col="dead"]')).to_have_text("0")
    # the record trace shows where the fixed value came from
    work.goto(live.url + "/trace?entity=customer&q=ewa.lis%40example.pl")
    expect(work.locator('tr[data-field="emails[0]"]')).to_contain_text("shop")
    context.close()


def test_resolve_a_conflict_and_see_the_value_reach_the_systems(live: Live, browser: Browser):
    d = live.d
    # Given a customer in step in the CRM and the shop
    crm_id = d.crm.system.put("customer", {"first_name": "Ola", "email": "ola@example.pl", "note": "base"})
    assert wait_for(lambda: len(d.shop.system.live("customer")) == 1, 20)
    [shop_id] = d.shop.system.live("customer")
    assert wait_for(lambda: (d.shop.system.get("customer", shop_id) or {}).get("note") == "base", 20)
    # When both sides change the note (a field parked for a person)
    live.worker.stop.set()
    live.worker.thread.join(10)
    d.crm.system.edit("customer", crm_id, note="VIP, call first")
    d.shop.system.edit("customer", shop_id, note="prefers lockers")
    d.pipeline.drain()
    live.worker = Worker(d)
    live.worker.thread.start()
    page = browser.new_page()
    page.goto(live.url + "/conflicts")
    conflict = page.locator("section.conflict").first
    expect(conflict).to_contain_text("note")
    values = {
        conflict.get_by_test_id("golden-value").inner_text(),
        conflict.get_by_test_id("incoming-value").inner_text(),
    }
    assert values == {'"VIP, call first"', '"prefers lockers"'}
    # the operator types the agreed value and resolves
    conflict.get_by_label("value").fill("VIP, prefers lockers")
    conflict.get_by_role("button", name="Use typed value").click()
    expect(page.get_by_role("status")).to_contain_text("resolved (value)")
    expect(page.locator("section.conflict")).to_have_count(0)
    # Then the value reaches both systems through the normal fan-out
    assert wait_for(lambda: d.crm.system.get("customer", crm_id)["note"] == "VIP, prefers lockers", 20)
    assert wait_for(lambda: d.shop.system.get("customer", shop_id)["note"] == "VIP, prefers lockers", 20)
    # and the trace shows who decided
    page.goto(live.url + "/trace?entity=customer&q=ola%40example.pl")
    note = page.locator('tr[data-field="note"]')
    expect(note).to_contain_text("VIP, prefers lockers")
    expect(note).to_contain_text("operator")
    expect(page.locator("a", has_text=crm_id)).to_have_attribute(
        "href", f"https://crm.example/lightning/r/Contact/{crm_id}/view"
    )
    page.goto(live.url + "/audit")
    expect(page.locator("table")).to_contain_text("resolve")
    page.close()
