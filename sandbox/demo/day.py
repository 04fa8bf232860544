"""``synchub demo``: one omnichannel day of a Polish retailer, on the emulators, from the example config.

The deployment is ``config.example.toml`` itself: the demo gives it the emulators' credentials
through the environment variables it names and points each system's address at its emulator;
mappings, entities, owner rules, batch sizes and retries are the example's, so the demo is also the
proof that the example config is complete. The work is done as ``synchub run`` does it with no
broker configured: dramatiq's in-process broker and worker threads, fed by the systems' webhooks
(the Shopify and InPost emulators deliver them to the web app) and by polls. Between the day's
scenes the demo asks for one poll of everything, as the scheduler would, and waits until the
workers are idle, so the day tells the same story every time.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape
from sqlalchemy import select

from connectors.shopify import ShopifyConnector
from connectors.shopify.webhooks import signature
from core.config import Config, SystemSettings, load_config
from core.logging import configure as configure_logging
from core.store.schema import conflicts, dead_letters, inbox, outbox, xref
from core.sync import operations
from core.sync.pipeline import Pipeline
from core.web.server import ServerThread
from sandbox.demo.seed import Person, Retailer, retailer
from sandbox.demo.summary import Summary, render, summarise
from sandbox.inpost.emulator import ShipXEmulator
from sandbox.salesforce import SalesforceEmulator
from sandbox.shopify.emulator import ShopifyEmulator, money
from sandbox.tryton.erp import Erp
from sandbox.tryton.server import TrytonServer, is_prepared
from workers.broker import queued_messages
from workers.run import Running, start, web_app
from workers.runtime import Runtime, install, runtime_from_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config.example.toml"
SHIPX_TOKEN = "demo-shipx-token"  # noqa: S105 - the local emulator's, not a secret
SHIPX_ORG = 1
WEBHOOK_TOPICS = ("customers/create", "customers/update", "orders/create", "orders/updated")
SHOP_WAREHOUSE = "Magazyn Kraków"  # the shop's location for the ERP's WH-KRK (mappings/shopify.yaml)
VAT = Decimal("1.23")


@dataclass
class Facts:
    """What the systems themselves hold at the end of the day, counted on the emulators."""

    crm_contacts: int
    crm_orders: int
    crm_shipments: int
    inpost_shipments: int
    inpost_returns: int
    shop_fulfilments: int
    locker_orders: int
    erp_parties: int = 0
    erp_sales: int = 0
    erp_complaints: int = 0
    crm_store_tasks: int = 0
    shop_stock_at_till: tuple[int | None, int | None] = (None, None)
    """The shop's available quantity of what was sold at the till: before the sale, after the sync."""


@dataclass
class DemoResult:
    summary: Summary
    facts: Facts
    store_url: str


@dataclass
class Stack:
    sf: SalesforceEmulator
    shop: ShopifyEmulator
    shipx: ShipXEmulator
    runtime: Runtime
    workers: Running
    config: Config
    web: ServerThread | None
    erp: Erp | None = None
    seen: dict[str, Any] = field(default_factory=dict)
    """What the day observed on the way, for the facts."""

    @property
    def hub(self) -> str:
        return self.config.hub_name

    @property
    def pipeline(self) -> Pipeline:
        return self.runtime.pipeline

    def settle(self, timeout: float = 120.0) -> None:
        """One poll of everything (what the scheduler sends), then wait until the workers are idle:
        webhooks delivered, no message queued or delayed, nothing pending in the inbox or outbox."""
        self.shop.wait_webhooks()
        for system in self.pipeline.systems.all():
            for entity in system.flows:
                if system.reads(entity):
                    self.workers.actors.poll.send(system.name, entity)
        deadline = time.monotonic() + timeout
        # the in-process broker's queues count a message until it has been processed, not only while
        # it waits; delayed messages (back-offs, the next flush) live in the ".DQ" queues, and are
        # work only when the store still has something pending, which _idle() sees
        queues = list(self.workers.broker.queues.values())
        quiet, idle_queues = 0, 0
        while time.monotonic() < deadline:
            time.sleep(0.25)
            self.shop.wait_webhooks()
            busy = sum(q.qsize() for q in queues)
            quiet = quiet + 1 if busy == 0 and self._idle() else 0
            if quiet >= 3:
                return
            idle_queues = idle_queues + 1 if busy == 0 else 0
            if idle_queues and idle_queues % 8 == 0:  # work pending, no message for it: the sweep's job
                self.workers.actors.sweep.send()
        if os.environ.get("SYNCHUB_DEMO_DEBUG"):
            import faulthandler

            faulthandler.dump_traceback(all_threads=True)
        raise TimeoutError(f"the workers did not settle: {self._waiting()}")

    def _waiting(self) -> str:
        """What is still queued or delayed (actor, args, due in s), for the error."""
        out = queued_messages(self.workers.broker)
        if os.environ.get("SYNCHUB_DEMO_DEBUG"):
            for qn, ct in self.workers.worker.consumers.items():
                c = getattr(ct, "consumer", None)
                sem = getattr(getattr(c, "prefetch_semaphore", None), "_value", "?")
                out.append(
                    f"consumer {qn}: alive={ct.is_alive()} paused={ct.paused} running={ct.running} "
                    f"sem={sem} delayed={ct.delay_queue.qsize()}"
                )
        return "; ".join(out) or "nothing queued (the store has pending work)"

    def settle_until(self, done: Callable[[], bool], tries: int = 8) -> None:
        """Settle, and again (a second later) until ``done``: a CRM record is read only once it is
        older than the connector's read lag, so one poll right after an edit may not see it yet."""
        self.settle()
        for _ in range(tries):
            if done():
                return
            time.sleep(1.0)
            self.settle()

    def _idle(self) -> bool:
        with self.pipeline.store.inbox.read() as conn:
            waiting = conn.execute(select(inbox.c.id).where(inbox.c.status == "pending").limit(1)).first()
        with self.pipeline.store.read() as conn:
            busy = conn.execute(
                select(outbox.c.id).where(outbox.c.status.in_(("pending", "inflight"))).limit(1)
            ).first()
        return waiting is None and busy is None


def _point(settings: SystemSettings, **overrides: Any) -> SystemSettings:
    return SystemSettings.model_validate({**settings.model_dump(), **overrides})


def demo_config(
    sf: SalesforceEmulator,
    shop: ShopifyEmulator,
    shipx: ShipXEmulator,
    workdir: Path,
    erp: TrytonServer | None = None,
) -> Config:
    """config.example.toml, with the emulators' credentials and addresses (and the Tryton server's)."""
    environ = {
        "SF_CLIENT_ID": sf.client_id,
        "SF_PRIVATE_KEY": sf.private_key_pem or "",
        "SF_USERNAME": sf.username,
        "SHOPIFY_PL_TOKEN": shop.token,
        "SHOPIFY_PL_WEBHOOK_SECRET": shop.webhook_secret,
        "TRYTON_PASSWORD": erp.password if erp is not None else "not-used",
        "INPOST_ORG_ID": str(SHIPX_ORG),
        "INPOST_TOKEN": SHIPX_TOKEN,
    }
    config = load_config(EXAMPLE, environ=environ)
    hub = _point(config.hub, login_url=sf.base_url, ca_bundle=sf.ca_bundle)
    spokes = dict(config.spokes)
    spokes["shop_pl"] = _point(spokes["shop_pl"], **{k: v for k, v in shop.settings().items() if k == "base_url"})
    spokes["lockers"] = _point(spokes["lockers"], base_url=shipx.url)
    if erp is None:
        spokes.pop("erp", None)
    else:
        spokes["erp"] = _point(
            spokes["erp"],
            base_url=erp.base_url,
            database=erp.database,
            login=erp.login,
            warehouses=["WH-KRK"],
        )
    return config.model_copy(
        update={
            "hub": hub,
            "spokes": spokes,
            "state": config.state.model_copy(update={"url": f"sqlite:///{workdir / 'synchub-demo.db'}"}),
        }
    )


def _net(gross: Decimal) -> Decimal:
    """The list price (net of 23 % VAT) the ERP keeps and the CRM's Price__c holds."""
    return (gross / VAT).quantize(Decimal("0.01"))


def seed(
    stack: Stack, shop_ids: dict[int, str], crm_ids: dict[int, str], world: Retailer, erp_ids: dict[int, int]
) -> None:
    for product in world.products:  # the CRM's product catalogue: order products are priced from it
        stack.sf.org.create(
            "Product2",
            {
                "Name": product.name,
                "ProductCode": product.sku,
                "Price__c": float(_net(product.price)),
                "IsActive": True,
            },
        )
    if stack.erp is not None:
        seed_erp(stack, stack.erp, world, erp_ids)
    for p in world.known_in("crm"):
        # the CRM holds some phones as people dictate them, some internationally
        phone = p.phone_local if p.key % 2 else p.phone_e164
        crm_ids[p.key] = stack.sf.org.create(
            "Contact",
            {
                "FirstName": p.first_name,
                "LastName": p.last_name,
                "Email": p.email,
                "MobilePhone": phone,
                "MailingCity": p.city,
                "MailingPostalCode": p.postal_code,
                "MailingStreet": p.street,
                "MailingCountryCode": "PL",
                "Loyalty_Id__c": p.loyalty_id,
                "HasOptedOutOfEmail": not p.marketing_opt_in,
            },
        )
    for p in world.known_in("shop"):
        shop_ids[p.key] = stack.shop.add_customer(
            email=p.email_as_typed_in_shop,
            firstName=p.first_name,
            lastName=p.last_name,
            marketing="SUBSCRIBED" if p.marketing_opt_in else "NOT_SUBSCRIBED",
            address=_address(p),
        )
    for name in world.lockers:
        stack.shipx.add_point(name)


PAST_SOURCES = ("web", "web", "iphone", "android")
PAST_CHANNEL = {"web": "online store", "iphone": "Shop app", "android": "Shop app"}
"""Where last month's orders were placed: the online store, and the Shop app on a phone."""


def past_buyers(world: Retailer, today: int = 12) -> list[Person]:
    """Shop customers who bought last month (by courier): every fifth after today's buyers."""
    return world.known_in("shop")[today::5]


def _past_order(stack: Stack, world: Retailer, p: Person, gid: str, n: int) -> str:
    """An order from last month, delivered by courier (no parcel locker, so nothing for InPost)."""
    product = world.products[(n * 5) % len(world.products)]
    day = 1 + n % 27
    return stack.shop.add_order(
        subtotalPriceSet=money(product.price),
        lines=[{"sku": product.sku, "name": product.name, "price": str(product.price), "quantity": 1}],
        customer=gid,
        email=p.email,
        sourceName=PAST_SOURCES[n % len(PAST_SOURCES)],
        displayFulfillmentStatus="FULFILLED",
        processedAt=f"2026-10-{day:02d}T1{n % 10}:15:00Z",
        shippingAddress=_address(p),
        shippingLine={
            "title": "Kurier DPD",
            "code": "Kurier DPD",
            "source": "dpd",
            "originalPriceSet": {"shopMoney": {"amount": "16.99", "currencyCode": "PLN"}},
        },
    )


def seed_erp(stack: Stack, erp: Erp, world: Retailer, erp_ids: dict[int, int]) -> None:
    """The ERP as the morning finds it: the catalogue with its stock in the Kraków warehouse, and the
    store's loyalty-card customers as the till keyed them in (a local phone number, rarely an email).
    The shop stocks every product the ERP publishes, at its own location for that warehouse."""
    stack.shop.add_location(SHOP_WAREHOUSE)
    for product in world.products:
        erp.add_product(product.sku, product.name, _net(product.price))
        erp.receive(product.sku, product.stock)
    for code in erp.ids["products"]:  # the ERP's older products too: every one has a shop item
        stack.shop.add_item(code, {SHOP_WAREHOUSE: 0})
    (poland,) = erp.search("country.country", [["code", "=", "PL"]], ["id"])
    for p in world.known_in("pos"):
        erp_ids[p.key] = erp.add_party(
            f"{p.first_name} {p.last_name}",
            # the loyalty-card form asks for an email: shop customers gave theirs; of the rest, a third
            email=p.email if p.in_shop or p.key % 3 == 0 else None,
            mobile=p.phone_local,
            address={"street": p.street, "postal_code": p.postal_code, "city": p.city, "country": poland["id"]},
        )


def _crm_contact(stack: Stack, email: str) -> str | None:
    for rid, c in stack.sf.org.table("Contact").items():
        if not c.get("IsDeleted") and str(c.get("Email") or "").lower() == email.lower():
            return str(rid)
    return None


def _shop_stock(stack: Stack, sku: str) -> int | None:
    """The available quantity of the shop's item at the ERP warehouse's location."""
    if not any(i.get("sku") == sku for i in stack.shop.items.values()):
        return None
    quantities = stack.shop.level(sku, SHOP_WAREHOUSE)["quantities"]
    return int(next(q["quantity"] for q in quantities if q["name"] == "available"))


def _address(p: Person) -> dict[str, Any]:
    return {
        "firstName": p.first_name,
        "lastName": p.last_name,
        "address1": p.street,
        "zip": p.postal_code,
        "city": p.city,
        "countryCode": "PL",
    }


def _locker_order(stack: Stack, world: Retailer, p: Person, gid: str, n: int) -> str:
    product = world.products[n % len(world.products)]
    quantity = 1 + n % 2
    return stack.shop.add_order(
        subtotalPriceSet=money(product.price * quantity),
        lines=[{"sku": product.sku, "name": product.name, "price": str(product.price), "quantity": quantity}],
        customer=gid,
        email=p.email,
        phone=p.phone_e164,
        customAttributes=[{"key": "inpost_point", "value": p.locker}],
        shippingLine={
            "title": "Paczkomat InPost 24/7",
            "code": "inpost_locker_standard",
            "source": "inpost",
            "originalPriceSet": {"shopMoney": {"amount": "12.99", "currencyCode": "PLN"}},
        },
    )


def play(stack: Stack, world: Retailer, say: Console, *, orders: int = 12) -> None:
    shop_ids: dict[int, str] = {}
    crm_ids: dict[int, str] = {}
    erp_ids: dict[int, int] = {}

    def step(title: str) -> None:
        say.print(f"\n[bold cyan]▸ {title}[/]")

    settle = stack.settle

    step(f"Morning: the shop, the CRM{', the ERP' if stack.erp is not None else ''} and the lockers as they stand")
    seed(stack, shop_ids, crm_ids, world, erp_ids)
    time.sleep(2.5)  # Salesforce reads stop a moment behind now (read_lag_seconds): let the seeds settle
    erp_part = (
        f", {len(erp_ids)} loyalty-card customers and {len(world.products)} products with stock in the ERP"
        if stack.erp is not None
        else ""
    )
    say.print(
        f"  {len(shop_ids)} shop customers, {len(crm_ids)} CRM contacts{erp_part}, {len(world.lockers)} parcel "
        f"lockers; {len(world.cross_channel)} people "
        "are known in more than one channel (upper-case emails in the shop, local phone numbers in the CRM"
        f"{' and at the till, loyalty cards' if stack.erp is not None else ''})"
    )
    settle()
    say.print("  synced: one golden record per person, every system's id cross-referenced")
    # last month's orders, read once the customers they belong to are in every system (see the report
    # on the order that arrives in the same poll as its brand-new customer)
    past = past_buyers(world)
    for n, p in enumerate(past):
        _past_order(stack, world, p, shop_ids[p.key], n)
    settle()
    sources = Counter(PAST_CHANNEL[PAST_SOURCES[n % len(PAST_SOURCES)]] for n in range(len(past)))
    also = " and the ERP" if stack.erp is not None else ""
    say.print(
        f"  last month's {len(past)} shop orders ({', '.join(f'{k} {v}' for k, v in sources.items())}; "
        f"delivered by courier) are in the CRM{also} too"
    )
    if stack.erp is not None:
        say.print(
            f"  the ERP's stock is the shop's: {_shop_stock(stack, world.products[0].sku)} × "
            f"{world.products[0].name} available in the shop ({SHOP_WAREHOUSE})"
        )
    if stack.web is not None:  # from now on the shop and the lockers push their changes as webhooks
        shopify = stack.pipeline.systems.get("shop_pl").connector
        assert isinstance(shopify, ShopifyConnector)
        shopify.subscribe(f"{stack.web.url}/webhooks/shop_pl", list(WEBHOOK_TOPICS))
        stack.shipx.webhook_url = f"{stack.web.url}/webhooks/lockers"
        say.print("  webhooks subscribed: the shop and InPost now push their changes; polls remain the safety net")

    step("A burst of 429s from InPost while web orders to parcel lockers come in")
    burst = 4
    stack.shipx.throttle(burst, retry_after=0.2)
    buyers = [p for p in world.known_in("shop")][:orders]
    for n, p in enumerate(buyers):
        _locker_order(stack, world, p, shop_ids[p.key], n)
    settle()
    stack.seen["throttled"] = {"lockers": burst - stack.shipx.faults.throttle_left}
    say.print(
        f"  {len(buyers)} locker orders → {len(stack.shipx.shipments())} InPost shipments, once each; "
        f"InPost answered 429 {burst - stack.shipx.faults.throttle_left} times and each time was waited out as its "
        "Retry-After asked; tracking numbers are in the CRM and on the shop's orders as fulfilments"
    )

    step("Parcels ready for pickup, most picked up")
    for n, shipment in enumerate(stack.shipx.shipments()):
        stack.shipx.advance(shipment["id"], "ready_to_pickup")
        if n % 3:
            stack.shipx.advance(shipment["id"], "delivered")
    settle()
    say.print("  statuses recorded on the CRM's shipments, with a touchpoint per pickup notice and pickup")

    step("A click & collect order: bought online, picked up in the Kraków store")
    collector = buyers[-1] if buyers else world.known_in("shop")[0]
    product = world.products[3]
    stack.shop.add_order(
        subtotalPriceSet=money(product.price),
        lines=[{"sku": product.sku, "name": product.name, "price": str(product.price), "quantity": 1}],
        customer=shop_ids[collector.key],
        email=collector.email,
        customAttributes=[{"key": "pickup_store", "value": "Kraków, ul. Floriańska 12"}],
        shippingLine={
            "title": "Odbiór osobisty",
            "code": "Odbiór osobisty",
            "source": "shopify",
            "originalPriceSet": {"shopMoney": {"amount": "0.00", "currencyCode": "PLN"}},
        },
    )
    settle()
    pickup = [o for o in stack.sf.org.table("Order").values() if o.get("Delivery_Method__c") == "click_and_collect"]
    where = pickup[0].get("Pickup_Store__c") if pickup else "not synced"
    say.print(f"  in the CRM as a click & collect order for {where}; no parcel is made for it")

    if stack.erp is not None:
        step("A purchase at the Kraków store's till by a customer the shop already knows")
        regular = next(p for p in world.cross_channel if p.in_pos and p.in_shop and p.key in erp_ids)
        product = world.products[0]
        before = _shop_stock(stack, product.sku)
        stack.erp.pos_sale(erp_ids[regular.key], [(product.sku, 2, str(product.price))], post=True)
        settle()
        stack.seen["shop_stock_at_till"] = (before, _shop_stock(stack, product.sku))
        tasks = [
            t
            for t in stack.sf.org.table("Task").values()
            if t.get("Channel__c") == "store" and t.get("WhoId") == _crm_contact(stack, regular.email)
        ]
        say.print(
            f"  {regular.first_name} {regular.last_name}: the ticket is in the CRM's timeline "
            f"({tasks[0].get('Subject') if tasks else 'not synced'}); the ERP's stock went down and so did the "
            f"shop's: {product.name} {before} → {_shop_stock(stack, product.sku)}"
        )
        sales = stack.erp.search("sale.sale", [], ["id", "reference", "state"])
        say.print(
            f"  the web orders are sales in the ERP: {len(sales)} ({', '.join(sorted({s['state'] for s in sales}))})"
        )

    step("A return by phone: the agent approves it in the CRM, InPost gets a return parcel")
    returning = buyers[0] if buyers else collector
    caller = _crm_contact(stack, returning.email)
    order_id = next((o["Id"] for o in stack.sf.org.table("Order").values() if o.get("BillToContactId") == caller), None)
    stack.sf.org.create(
        "Case",
        {
            "Type": "Return",
            "Status": "Approved",
            "Origin": "Phone",
            "Subject": "Zwrot zamówienia",
            "Description": "Koc w innym kolorze niż na zdjęciu",
            "ContactId": caller,
            "Order__c": order_id,
        },
    )
    time.sleep(2.5)  # the CRM is read a moment behind now
    stack.settle_until(lambda: any(s.get("is_return") for s in stack.shipx.shipments()))
    returns = [s for s in stack.shipx.shipments() if s.get("is_return")]
    if os.environ.get("SYNCHUB_DEMO_DEBUG"):
        say.print(
            f"DEBUG shipments {[(s.get('id'), s.get('is_return'), s.get('status')) for s in stack.shipx.shipments()]}"
        )
    point = returns[0].get("custom_attributes", {}).get("target_point") if returns else "-"
    say.print(
        f"  {returning.first_name} {returning.last_name}: return approved by phone → "
        f"{len(returns)} InPost return parcel(s), to be dropped at a locker and delivered to {point}"
    )

    step("A complaint by phone becomes a Case every channel can see")
    stack.sf.org.create(
        "Case",
        {
            "Type": "Complaint",
            "Status": "New",
            "Origin": "Phone",
            "Priority": "High",
            "Subject": "Pęknięty kubek",
            "Description": "Kubek pękł po pierwszym myciu.",
            "ContactId": caller,
            "Order__c": order_id,
        },
    )
    time.sleep(2.5)
    if stack.erp is not None:
        erp = stack.erp
        stack.settle_until(lambda: bool(erp.search("sale.complaint", [], ["id"])))
    else:
        settle()
    if stack.erp is not None:
        complaints = stack.erp.search("sale.complaint", [], ["id", "state", "description"])
        say.print(
            f"  recorded in the hub against the customer and the order, and in the ERP as "
            f"{len(complaints)} complaint(s) ({', '.join(c['state'] for c in complaints)}) for the back office"
        )
    else:
        say.print("  recorded in the hub against the customer and the order")

    step("A customer unsubscribes in the shop: it wins over the older opt-in in the CRM")
    opted = next(p for p in world.cross_channel if p.in_shop and p.in_crm and p.marketing_opt_in)
    customer = stack.shop.customers[shop_ids[opted.key]]
    stack.shop.edit_customer(
        shop_ids[opted.key],
        defaultEmailAddress={**customer["defaultEmailAddress"], "marketingState": "UNSUBSCRIBED"},
    )
    settle()
    contact = stack.sf.org.live("Contact", crm_ids[opted.key])
    say.print(f"  {opted.first_name} {opted.last_name}: CRM HasOptedOutOfEmail = {contact.get('HasOptedOutOfEmail')}")

    step("The same address edited in the shop and in the CRM at once")
    both = next(p for p in world.cross_channel if p.in_shop and p.in_crm and p is not opted)
    stack.sf.org.update("Contact", crm_ids[both.key], {"MailingCity": "Sopot", "MailingPostalCode": "81-701"})
    time.sleep(2.5)  # the CRM is read a moment behind now (read_lag_seconds): an edit older than that
    current = stack.shop.customers[shop_ids[both.key]]["defaultAddress"]
    stack.shop.edit_customer(shop_ids[both.key], defaultAddress={**current, "city": "Gdynia", "zip": "81-301"})
    settle()
    with stack.pipeline.store.begin() as conn:
        canonical = select(xref.c.canonical_id).where(
            xref.c.entity == "customer", xref.c.system == "shop_pl", xref.c.native_id == shop_ids[both.key]
        )
        rows = conn.execute(
            select(
                conflicts.c.field,
                conflicts.c.system,
                conflicts.c.hub_value,
                conflicts.c.incoming_value,
                conflicts.c.rule,
                conflicts.c.outcome,
            )
            .where(conflicts.c.entity == "customer", conflicts.c.canonical_id.in_(canonical.scalar_subquery()))
            .order_by(conflicts.c.id)
        ).fetchall()
    shop_city = stack.shop.customers[shop_ids[both.key]]["defaultAddress"].get("city")
    crm_city = stack.sf.org.live("Contact", crm_ids[both.key]).get("MailingCity")
    for row in rows:
        kept = row.incoming_value if row.outcome == "incoming" else row.hub_value
        say.print(
            f"  conflict recorded on {row.field}: golden {row.hub_value!r}, {row.system} {row.incoming_value!r} "
            f"→ rule [bold]{row.rule}[/] keeps {kept!r}"
        )
    say.print(f"  {both.first_name} {both.last_name} now lives in {crm_city} in the CRM and {shop_city} in the shop")

    step("A malformed webhook: signed correctly, but its email is not an address")
    bad = world.known_in("shop")[-1]
    body = json.dumps(
        {
            "id": int(shop_ids[bad.key].rsplit("/", 1)[1]),
            "email": "kowalski(at)example",
            "first_name": bad.first_name,
            "last_name": bad.last_name,
            "updated_at": "2026-11-23T12:00:00+01:00",
            "admin_graphql_api_id": shop_ids[bad.key],
        }
    ).encode()
    headers = {
        "X-Shopify-Topic": "customers/update",
        "X-Shopify-Event-Id": "demo-malformed-1",
        "X-Shopify-Hmac-Sha256": signature(stack.shop.webhook_secret, body),
        "Content-Type": "application/json",
    }
    if stack.web is not None:
        answer = httpx.post(f"{stack.web.url}/webhooks/shop_pl", content=body, headers=headers, timeout=10)
        say.print(f"  POST /webhooks/shop_pl → {answer.status_code} (accepted: the record is kept)")
    else:
        for event in stack.pipeline.systems.get("shop_pl").connector.parse_webhook(headers, body):  # type: ignore[union-attr]
            row = stack.pipeline.accept("shop_pl", event.entity, event.event_id, event.record, op=event.op)
            stack.workers.actors.process_inbox.send([row] if row is not None else None)
    settle()
    with stack.pipeline.store.begin() as conn:
        dl = conn.execute(
            select(dead_letters.c.id, dead_letters.c.payload, dead_letters.c.error)
            .where(dead_letters.c.status == "open", dead_letters.c.system == "shop_pl")
            .order_by(dead_letters.c.id.desc())
        ).first()
    if dl is not None:
        say.print(f"  dead letter #{dl.id}, kept with its payload: {escape(_short(dl.error.splitlines()[0], 140))}")
        fixed = json.loads(json.dumps(dl.payload))
        fixed.setdefault("defaultEmailAddress", {})
        if isinstance(fixed["defaultEmailAddress"], dict):
            fixed["defaultEmailAddress"]["emailAddress"] = bad.email
        operations.edit_and_replay(stack.pipeline, int(dl.id), fixed, actor="demo:ops")
        settle()
        say.print("  an operator fixed the email in the dashboard and replayed it: applied")


def _short(text: str, width: int = 100) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


NO_ERP = "  [bold yellow]Running without the ERP and the store's till[/] (Tryton)"


def _erp_server(say: Console, with_erp: bool) -> TrytonServer | None:
    """A real trytond for the ERP and the store's till: built once into a cache (its own venv and a
    template database), then started from a copy of the template in seconds."""
    if not with_erp:
        say.print(NO_ERP + ", as asked (--no-erp): no ERP stock, no sales, no purchase at the till today")
        return None
    if not is_prepared():
        say.print("  preparing Tryton once (its own venv and a template database; a minute or two)…")
    try:
        return TrytonServer()
    except Exception as exc:  # no package registry, no disk: the day goes on without the ERP, and says so
        reason = _short(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        say.print(
            f"{NO_ERP}: it could not be started ({escape(reason)}); "
            "`uv run python -m sandbox.tryton.server prepare` builds it"
        )
        return None


def run(
    people: int = 300,
    *,
    once: bool = True,
    port: int | None = None,
    console: Console | None = None,
    with_erp: bool = True,
    while_up: Callable[[Stack, str | None], None] | None = None,
) -> DemoResult:
    """Run the day; with ``once=False`` keep the dashboard up until Ctrl-C. Returns the summary.

    ``while_up`` is called with the stack and the printed trace link after the summary, while the
    dashboard still serves (the test fetches the link through it)."""
    say = console or Console()
    configure_logging(False, os.environ.get("SYNCHUB_LOG_LEVEL", "ERROR"))
    workdir = Path(tempfile.mkdtemp(prefix="synchub-demo-"))
    world = retailer(people)
    say.print("[bold]synchub demo[/] — one day of a Polish homeware retailer (config.example.toml)")
    erp_server = _erp_server(say, with_erp)
    with (
        SalesforceEmulator() as sf,
        ShopifyEmulator(restore_rate=2000.0) as shop,
        ShipXEmulator(token=SHIPX_TOKEN, organization_id=SHIPX_ORG) as shipx,
    ):
        config = demo_config(sf, shop, shipx, workdir, erp_server)
        erp = Erp(erp_server) if erp_server is not None else None
        runtime = runtime_from_config(config)
        pipeline = runtime.pipeline
        install(runtime)
        # [broker] url = "": dramatiq's in-process broker, with [workers] threads worker threads
        workers = start(config.broker.url, threads=config.workers.threads)
        web: ServerThread | None = ServerThread(web_app(runtime, workers.actors), host="127.0.0.1", port=port or 0)
        try:
            assert web is not None
            web.start()
            say.print(f"  dashboard: {web.url}")
        except RuntimeError as exc:
            say.print(f"  dashboard not served: {exc}")
            web = None
        stack = Stack(sf, shop, shipx, runtime, workers, config, web, erp)
        try:
            play(stack, world, say)
            summary = summarise(pipeline.store, stack.hub)
            if os.environ.get("SYNCHUB_DEMO_DEBUG"):
                with pipeline.store.begin() as conn:
                    for r in conn.execute(select(dead_letters.c.system, dead_letters.c.stage, dead_letters.c.error)):
                        say.print(f"DL {r.system} {r.stage} {r.error[:300]}")
            say.print()
            trace = None
            if web is not None and world.cross_channel:
                trace = f"{web.url}/trace?q={world.cross_channel[0].email}"
            summary.throttled = dict(stack.seen.get("throttled", {}))
            render(summary, say, trace_url=trace, erp=erp is not None)
            facts = Facts(
                crm_contacts=sum(1 for r in sf.org.table("Contact").values() if not r.get("IsDeleted")),
                crm_orders=sum(1 for r in sf.org.table("Order").values() if not r.get("IsDeleted")),
                crm_shipments=sum(1 for r in sf.org.table("Shipment__c").values() if not r.get("IsDeleted")),
                inpost_shipments=len(shipx.shipments()),
                inpost_returns=sum(1 for x in shipx.shipments() if x.get("is_return")),
                locker_orders=sum(1 for o in shop.orders.values() if "inpost" in str(o.get("shippingLine"))),
                shop_fulfilments=sum(len(o["fulfillments"]) for o in shop.orders.values()),
                crm_store_tasks=sum(1 for t in sf.org.table("Task").values() if t.get("Channel__c") == "store"),
                shop_stock_at_till=stack.seen.get("shop_stock_at_till", (None, None)),
            )
            if erp is not None:
                facts.erp_parties = len(erp.search("party.party", [], ["id"])) - 1  # less the company's own
                facts.erp_sales = len(erp.search("sale.sale", [], ["id"]))
                facts.erp_complaints = len(erp.search("sale.complaint", [], ["id"]))
            if while_up is not None:
                while_up(stack, trace)
            if not once and web is not None:
                say.print("\nThe dashboard stays up; Ctrl-C to stop.")
                try:
                    while True:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
            return DemoResult(summary, facts, config.state.url)
        finally:
            if web is not None:
                web.stop()
            workers.stop(timeout_ms=30_000)
            install(None)
            runtime.close()
            if erp is not None:
                erp.close()
            if erp_server is not None:
                erp_server.stop()
