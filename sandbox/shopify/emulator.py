"""A Shopify Admin GraphQL API on 127.0.0.1, for tests, benchmarks and the demo.

It serves ``POST /admin/api/<version>/graphql.json`` with the schema in ``schema.graphql`` (a subset
cut from Shopify's published schema, see subset.py), checks ``X-Shopify-Access-Token``, charges
calculated query cost from a leaky bucket and answers THROTTLED when it is empty (cost.py), runs
bulk operations whose JSONL results it serves over HTTP, and delivers webhooks with a correct
``X-Shopify-Hmac-Sha256`` to the URLs registered with ``webhookSubscriptionCreate``.

Knobs for tests: ``latency``; ``fail_next(n, status, retry_after)`` (whole-call 5xx or 429 answers,
https://shopify.dev/docs/api/usage/response-codes); ``stall_next(n, seconds)`` (the call is carried
out, its answer comes late: a client's timeout, a lost answer); ``bucket.set(n)`` (empty the
bucket); ``clock`` (freeze time so many
records share one ``updated_at``); ``pause_webhooks()`` / ``release_webhooks(reverse=True)`` for
out-of-order delivery, ``duplicate_webhooks`` to deliver each twice; and merchant edits made
directly (``add_customer``, ``edit_customer``, …) which bump ``updatedAt`` and fire webhooks as the
admin would.

Documentation followed: https://shopify.dev/docs/api/admin-graphql/2026-10 (objects and mutations),
https://shopify.dev/docs/api/usage/pagination-graphql (cursors), https://shopify.dev/docs/api/usage/bulk-operations/queries
(bulk operations and JSONL), https://shopify.dev/docs/apps/build/webhooks/subscribe/https (webhook headers).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import itertools
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from graphql import GraphQLError, build_schema, execute_sync, get_named_type, parse, validate
from graphql.execution.values import get_directive_values
from graphql.language import OperationDefinitionNode

from sandbox.shopify import rest
from sandbox.shopify.cost import MAX_QUERY_COST, LeakyBucket, actual_cost, requested_cost
from sandbox.shopify.search import matcher

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
QUANTITY_NAMES = ("available", "on_hand", "committed", "incoming", "reserved")


def _stamp(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Any) -> dict[str, Any]:
    return {"shopMoney": {"amount": str(value), "currencyCode": "PLN"}}


def _num(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1].split("?")[0])


class UserErrors(Exception):
    def __init__(self, *errors: dict[str, Any]) -> None:
        self.errors = list(errors)


class ShopifyEmulator:
    """``with ShopifyEmulator() as shop: shop.url, shop.token, shop.webhook_secret …``"""

    def __init__(
        self,
        *,
        token: str = "shpat_emulator",  # noqa: S107 - the emulator's own fake credential
        webhook_secret: str = "emulator-webhook-secret",  # noqa: S107
        version: str = "2026-10",
        latency: float = 0.0,
        maximum: float = 2000.0,
        restore_rate: float = 100.0,
        bulk_polls: int = 1,
    ) -> None:
        self.token = token
        self.webhook_secret = webhook_secret
        self.version = version
        self.latency = latency
        self.bucket = LeakyBucket(maximum, restore_rate)
        self.bulk_polls = bulk_polls  # polls answered RUNNING before a bulk operation completes
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.lock = threading.RLock()
        self.ids = itertools.count(1001)
        self.customers: dict[str, dict[str, Any]] = {}
        self.orders: dict[str, dict[str, Any]] = {}
        self.products: dict[str, dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self.locations: dict[str, dict[str, Any]] = {}
        self.bulk_ops: dict[str, dict[str, Any]] = {}
        self.bulk_files: dict[str, bytes] = {}
        self.subscriptions: list[dict[str, Any]] = []
        self.idempotency: dict[str, Any] = {}
        self.requests: list[dict[str, Any]] = []  # every GraphQL call: operation name, cost, throttled
        self.throttled = 0
        # webhooks
        self.duplicate_webhooks = False
        self.failures: list[tuple[int, float | None]] = []  # (status, Retry-After) for the next calls
        self.stalls: list[float] = []
        self._faults_lock = threading.Lock()
        self.deliveries: list[dict[str, Any]] = []  # what was sent, with the answer status
        self._paused: list[dict[str, Any]] | None = None
        self._outbox: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._http = httpx.Client(timeout=10.0)
        self.schema = build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))
        self._wire()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.endpoint = f"{self.url}/admin/api/{version}/graphql.json"
        self._threads = [
            # shutdown() waits for the loop's next look: 0.5 s by default, paid by every test's teardown
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True),
            threading.Thread(target=self._deliver_loop, daemon=True),
        ]
        for t in self._threads:
            t.start()

    def __enter__(self) -> ShopifyEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._outbox.put(None)
        self.server.shutdown()
        self.server.server_close()
        self._http.close()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Connector settings pointing at this emulator."""
        return {"base_url": self.url, "token": self.token, "webhook_secret": self.webhook_secret, **extra}

    # --- time and ids ----------------------------------------------------------------------------

    def now(self) -> str:
        return _stamp(self.clock())

    def freeze(self, at: datetime | None) -> None:
        """Freeze ``updatedAt`` at ``at`` (None: real time again)."""

        def frozen() -> datetime:
            return at if at is not None else datetime.now(UTC)

        self.clock = frozen

    def _gid(self, kind: str) -> str:
        return f"gid://shopify/{kind}/{next(self.ids)}"

    # --- merchant edits (the admin) --------------------------------------------------------------

    def add_location(self, name: str) -> str:
        with self.lock:
            gid = self._gid("Location")
            self.locations[gid] = {"__typename": "Location", "id": gid, "name": name}
            return gid

    def add_customer(
        self,
        *,
        email: str | None = None,
        marketing: str = "NOT_SUBSCRIBED",
        address: dict[str, Any] | None = None,
        metafields: dict[tuple[str, str], str] | None = None,
        **fields: Any,
    ) -> str:
        with self.lock:
            gid = self._gid("Customer")
            now = self.now()
            c: dict[str, Any] = {
                "__typename": "Customer",
                "id": gid,
                "firstName": None,
                "lastName": None,
                "locale": "pl",
                "note": None,
                "tags": [],
                "createdAt": now,
                "updatedAt": now,
                "defaultEmailAddress": None,
                "defaultPhoneNumber": None,
                "defaultAddress": None,
                "addresses": [],
                "_metafields": dict(metafields or {}),
            }
            c.update(fields)
            if email:
                c["defaultEmailAddress"] = {
                    "emailAddress": email,
                    "marketingState": marketing,
                    "marketingOptInLevel": None,
                    "marketingUpdatedAt": None,
                }
            if address:
                self._set_address(c, dict(address), None)
            self.customers[gid] = c
            self._fire("customers/create", c)
            return gid

    def edit_customer(self, gid: str, **changes: Any) -> None:
        """A merchant's edit in the admin: ``address={...}`` edits the default address."""
        with self.lock:
            c = self.customers[gid]
            address = changes.pop("address", None)
            if address is not None:
                self._set_address(c, address, (c.get("defaultAddress") or {}).get("id"))
            if "email" in changes:
                c["defaultEmailAddress"] = {
                    **(c.get("defaultEmailAddress") or {"marketingState": "NOT_SUBSCRIBED"}),
                    "emailAddress": changes.pop("email"),
                }
            c.update(changes)
            c["updatedAt"] = self.now()
            self._fire("customers/update", c)

    def add_order(self, *, lines: list[dict[str, Any]], customer: str | None = None, **fields: Any) -> str:
        with self.lock:
            gid = self._gid("Order")
            now = self.now()
            o: dict[str, Any] = {
                "__typename": "Order",
                "id": gid,
                "name": f"#{_num(gid)}",
                "email": None,
                "phone": None,
                "sourceName": "web",
                "displayFulfillmentStatus": "UNFULFILLED",
                "displayFinancialStatus": "PAID",
                "currencyCode": "PLN",
                "customer": {"id": customer} if customer else None,
                "subtotalPriceSet": None,
                "totalShippingPriceSet": money("0.00"),
                "totalTaxSet": None,
                "totalDiscountsSet": money("0.00"),
                "totalPriceSet": money(sum(float(li["price"]) * li.get("quantity", 1) for li in lines)),
                "shippingLine": None,
                "customAttributes": [],
                "shippingAddress": None,
                "billingAddress": None,
                "fulfillments": [],
                "tags": [],
                "note": None,
                "processedAt": now,
                "updatedAt": now,
                "lineItems": [
                    {
                        "__typename": "LineItem",
                        "id": self._gid("LineItem"),
                        "sku": li.get("sku"),
                        "name": li.get("name", li.get("sku")),
                        "quantity": li.get("quantity", 1),
                        "originalUnitPriceSet": money(li["price"]),
                        "totalDiscountSet": money("0.00"),
                        "discountedTotalSet": money(float(li["price"]) * li.get("quantity", 1)),
                    }
                    for li in lines
                ],
                "fulfillmentOrders": [
                    {
                        "__typename": "FulfillmentOrder",
                        "id": self._gid("FulfillmentOrder"),
                        "status": "OPEN",
                        "deliveryMethod": {"methodType": fields.pop("delivery", "SHIPPING")},
                    }
                ],
            }
            o.update(fields)
            self.orders[gid] = o
            self._fire("orders/create", o)
            return gid

    def add_item(self, sku: str, levels: dict[str, int]) -> str:
        """An inventory item stocked at the named locations with those available quantities."""
        with self.lock:
            gid = self._gid("InventoryItem")
            now = self.now()
            by_name = {loc["name"]: loc for loc in self.locations.values()}
            item: dict[str, Any] = {
                "__typename": "InventoryItem",
                "id": gid,
                "sku": sku,
                "updatedAt": now,
                "inventoryLevels": [],
            }
            for name, qty in levels.items():
                loc = by_name[name]
                item["inventoryLevels"].append(
                    {
                        "__typename": "InventoryLevel",
                        "id": f"gid://shopify/InventoryLevel/{_num(loc['id'])}?inventory_item_id={_num(gid)}",
                        "updatedAt": now,
                        "location": loc,
                        "quantities": [{"name": "available", "quantity": qty}, {"name": "on_hand", "quantity": qty}],
                    }
                )
            self.items[gid] = item
            return gid

    def level(self, sku: str, location: str) -> dict[str, Any]:
        item = next(i for i in self.items.values() if i["sku"] == sku)
        return next(lv for lv in item["inventoryLevels"] if lv["location"]["name"] == location)

    def _set_address(self, c: dict[str, Any], fields: dict[str, Any], address_id: str | None) -> dict[str, Any]:
        # an address's id is Shopify's to give (MailingAddressInput has none): never overwritten by input
        fields = {("countryCodeV2" if k == "countryCode" else k): v for k, v in fields.items() if k != "id"}
        if address_id is None:
            address = {
                "id": f"{self._gid('MailingAddress')}?model_name=CustomerAddress",
                "firstName": None,
                "lastName": None,
                "company": None,
                "address1": None,
                "address2": None,
                "zip": None,
                "city": None,
                "countryCodeV2": None,
                "phone": None,
            }
            c["addresses"].append(address)
        else:
            address = next(a for a in c["addresses"] if a["id"] == address_id)
        address.update(fields)
        c["defaultAddress"] = address
        return address

    # --- webhooks --------------------------------------------------------------------------------

    def fail_next(self, calls: int = 1, status: int = 503, retry_after: float | None = None) -> None:
        with self._faults_lock:
            self.failures.extend([(status, retry_after)] * calls)

    def stall_next(self, calls: int = 1, seconds: float = 2.0) -> None:
        with self._faults_lock:
            self.stalls.extend([seconds] * calls)

    def pause_webhooks(self) -> None:
        with self.lock:
            self._paused = []

    def release_webhooks(self, *, reverse: bool = False) -> None:
        with self.lock:
            held, self._paused = self._paused or [], None
        for d in reversed(held) if reverse else held:
            self._outbox.put(d)

    def redeliver(self, delivery: dict[str, Any]) -> None:
        """Send a delivery again, same ids (what Shopify does after a timeout or non-2xx)."""
        self._outbox.put(delivery)

    def wait_webhooks(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while (self._outbox.unfinished_tasks or 0) and time.monotonic() < deadline:
            time.sleep(0.01)

    def _fire(self, topic: str, obj: dict[str, Any], item: dict[str, Any] | None = None) -> None:
        subs = [s for s in self.subscriptions if s["topic"] == topic.replace("/", "_").upper()]
        if not subs:
            return
        event_id = str(uuid.uuid4())
        for sub in subs:
            if topic.startswith("customers"):
                payload = rest.customer(obj, sub["metafieldNamespaces"])
            elif topic.startswith("orders"):
                payload = rest.order(obj)
            else:
                assert item is not None
                payload = rest.inventory_level(obj, item)
            body = json.dumps(payload).encode()
            digest = base64.b64encode(hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).digest()).decode()
            delivery = {
                "uri": sub["uri"],
                "body": body,
                "headers": {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": topic,
                    "X-Shopify-Hmac-Sha256": digest,
                    "X-Shopify-Shop-Domain": "emulator.myshopify.com",
                    "X-Shopify-API-Version": self.version,
                    "X-Shopify-Webhook-Id": str(uuid.uuid4()),
                    "X-Shopify-Event-Id": event_id,
                    "X-Shopify-Triggered-At": datetime.now(UTC).isoformat(),
                },
            }
            copies = 2 if self.duplicate_webhooks else 1
            for _ in range(copies):
                if self._paused is not None:
                    self._paused.append(delivery)
                else:
                    self._outbox.put(delivery)

    def _deliver_loop(self) -> None:
        while True:
            d = self._outbox.get()
            try:
                if d is None:
                    return
                try:
                    status = self._http.post(d["uri"], content=d["body"], headers=d["headers"]).status_code
                except httpx.HTTPError:
                    status = 0
                self.deliveries.append({**d, "status": status})
            finally:
                self._outbox.task_done()

    # --- HTTP ------------------------------------------------------------------------------------

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        emu = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def date_time_string(self, timestamp: float | None = None) -> str:
                # every answer's Date header (RFC 9110 §6.6.1) is the shop's clock, frozen or not: the
                # connector reads the server's time from it
                return format_datetime(emu.clock().astimezone(UTC), usegmt=True)

            def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                name = self.path.removeprefix("/bulk/").removesuffix(".jsonl")
                data = emu.bulk_files.get(name)
                if not self.path.startswith("/bulk/") or data is None:
                    self._send(404, b'{"errors":"Not Found"}')
                    return
                self._send(200, data, "application/jsonl")

            def do_POST(self) -> None:
                time.sleep(emu.latency)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with emu._faults_lock:
                    failure = emu.failures.pop(0) if emu.failures else None
                    stall = emu.stalls.pop(0) if emu.stalls else 0.0
                if failure is not None:
                    status, retry_after = failure
                    message = {429: "Exceeded 2 calls per second for api client. Reduce request rates to resume "
                               "uninterrupted service."}.get(status, "Internal Server Error" if status == 500 else
                                                              "Service Unavailable")  # fmt: skip
                    self.send_response(status)
                    out = json.dumps({"errors": message}).encode() if status != 429 else b""
                    if retry_after is not None:
                        self.send_header("Retry-After", f"{retry_after:g}")
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    return
                status, out = self._answer(body)
                time.sleep(stall)  # carried out already: only the answer is late
                self._send(status, out)

            def _answer(self, body: bytes) -> tuple[int, bytes]:
                if self.path != f"/admin/api/{emu.version}/graphql.json":
                    return 404, b'{"errors":"Not Found"}'
                if not hmac.compare_digest(self.headers.get("X-Shopify-Access-Token", "").encode(), emu.token.encode()):
                    # https://shopify.dev/docs/api/usage/response-codes
                    return (
                        401,
                        b'{"errors":"[API] Invalid API key or access token (unrecognized login or wrong password)"}',
                    )
                try:
                    request = json.loads(body)
                except ValueError:
                    return 400, b'{"errors":"Bad Request"}'
                return 200, json.dumps(emu.graphql(request.get("query", ""), request.get("variables") or {})).encode()

        return Handler

    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """One GraphQL call as Shopify answers it: data/errors plus ``extensions.cost``."""
        try:
            document = parse(query)
        except GraphQLError as exc:
            return {"errors": [exc.formatted]}
        errors = validate(self.schema, document)
        if errors:
            return {"errors": [e.formatted for e in errors]}
        requested = requested_cost(self.schema, document, variables)
        name = next((d.name.value for d in document.definitions if getattr(d, "name", None)), None)  # type: ignore[attr-defined]
        if requested > MAX_QUERY_COST:
            return {
                "errors": [
                    {
                        "message": f"Query cost is {requested}, which exceeds the single query max cost limit "
                        f"({MAX_QUERY_COST}).",
                        "extensions": {"code": "MAX_COST_EXCEEDED", "cost": requested, "maxCost": MAX_QUERY_COST},
                    }
                ],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": requested,
                        "actualQueryCost": None,
                        "throttleStatus": self.bucket.status(),
                    }
                },
            }
        if not self.bucket.take(requested):
            self.throttled += 1
            self.requests.append({"operation": name, "requested": requested, "actual": 0, "throttled": True})
            # https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits (THROTTLED, HTTP 200)
            return {
                "errors": [
                    {
                        "message": "Throttled",
                        "extensions": {
                            "code": "THROTTLED",
                            "documentation": "https://shopify.dev/api/usage/limits#rate-limits",
                        },
                    }
                ],
                "extensions": {
                    "cost": {
                        "requestedQueryCost": requested,
                        "actualQueryCost": None,
                        "throttleStatus": self.bucket.status(),
                    }
                },
            }
        mutations = sum(
            len(d.selection_set.selections)
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode) and d.operation.value == "mutation"
        )
        with self.lock:
            result = execute_sync(self.schema, document, variable_values=variables, context_value={"bulk": False})
        data = result.data
        actual = min(actual_cost(data, mutations), requested)
        self.bucket.refund(requested - actual)
        self.requests.append({"operation": name, "requested": requested, "actual": actual, "throttled": False})
        answer: dict[str, Any] = {"data": data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        answer["extensions"] = {
            "cost": {"requestedQueryCost": requested, "actualQueryCost": actual, "throttleStatus": self.bucket.status()}
        }
        return answer

    # --- resolvers -------------------------------------------------------------------------------

    def _wire(self) -> None:
        s = self.schema
        node = s.get_type("Node")
        node.resolve_type = lambda obj, *_: obj["__typename"]  # type: ignore[union-attr]
        for t in s.type_map.values():
            if t.name.startswith("__") or not hasattr(t, "fields") or t in (s.query_type, s.mutation_type):
                continue
            for field in getattr(t, "fields", {}).values():
                if get_named_type(field.type).name.endswith("Connection"):
                    field.resolve = self._nested_connection
        q = s.query_type.fields  # type: ignore[union-attr]
        q["customers"].resolve = lambda _o, info, **a: self._connection(
            list(self.customers.values()),
            a,
            info,
            {
                "updated_at": lambda c: c["updatedAt"],
                "email": lambda c: (c.get("defaultEmailAddress") or {}).get("emailAddress"),
                "id": lambda c: _num(c["id"]),
            },
        )
        q["orders"].resolve = lambda _o, info, **a: self._connection(
            list(self.orders.values()), a, info, {"updated_at": lambda o: o["updatedAt"], "name": lambda o: o["name"]}
        )
        q["products"].resolve = lambda _o, info, **a: self._connection(
            list(self.products.values()), a, info, {"updated_at": lambda p: p["updatedAt"]}
        )
        q["inventoryItems"].resolve = lambda _o, info, **a: self._connection(
            list(self.items.values()), a, info, {"updated_at": lambda i: i["updatedAt"], "sku": lambda i: i.get("sku")}
        )
        q["locations"].resolve = lambda _o, info, **a: self._connection(
            list(self.locations.values()), a, info, {"name": lambda loc: loc["name"]}
        )
        q["customerByIdentifier"].resolve = self._customer_by_identifier
        q["order"].resolve = lambda _o, _i, id: self.orders.get(id)
        q["node"].resolve = lambda _o, _i, id: self._node(id)
        q["nodes"].resolve = lambda _o, _i, ids: [self._node(i) for i in ids]
        q["currentBulkOperation"].resolve = lambda _o, _i, **a: (
            self._poll_bulk(max(self.bulk_ops, key=lambda k: self.bulk_ops[k]["createdAt"])) if self.bulk_ops else None
        )
        for tname in ("Customer",):
            s.get_type(tname).fields["metafield"].resolve = lambda obj, _i, key, namespace=None: (  # type: ignore[union-attr]
                {"value": obj["_metafields"][(namespace, key)]}
                if (namespace, key) in obj.get("_metafields", {})
                else None
            )
        levels: Any = s.get_type("InventoryLevel")
        levels.fields["quantities"].resolve = lambda obj, _i, names: [
            q for q in obj["quantities"] if q["name"] in names
        ]
        m = s.mutation_type.fields  # type: ignore[union-attr]
        for fname, fn in {
            "customerCreate": self._customer_create,
            "customerUpdate": self._customer_update,
            "customerAddressCreate": self._address_create,
            "customerAddressUpdate": self._address_update,
            "customerEmailMarketingConsentUpdate": self._consent_update,
            "orderUpdate": self._order_update,
            "fulfillmentCreate": self._fulfillment_create,
            "inventorySetQuantities": self._inventory_set,
            "bulkOperationRunQuery": self._bulk_run,
            "webhookSubscriptionCreate": self._webhook_create,
        }.items():
            m[fname].resolve = self._mutation(fn)  # type: ignore[arg-type]

    def _node(self, gid: str) -> dict[str, Any] | None:
        for table in (self.customers, self.orders, self.products, self.items, self.locations):
            if gid in table:
                return table[gid]
        if gid in self.bulk_ops:
            return self._poll_bulk(gid)
        return None

    def _connection(
        self, items: list[dict[str, Any]], args: dict[str, Any], info: Any, fields: dict[str, Any]
    ) -> dict[str, Any]:
        match = matcher(args.get("query"), fields)
        rows = [i for i in items if match(i)]
        sort = args.get("sortKey") or "ID"
        key = (lambda r: (r["updatedAt"], _num(r["id"]))) if sort == "UPDATED_AT" else (lambda r: (_num(r["id"]),))
        rows.sort(key=key, reverse=bool(args.get("reverse")))
        return self._page(rows, args, info, key)

    def _nested_connection(self, obj: dict[str, Any], info: Any, **args: Any) -> dict[str, Any]:
        rows = list(obj.get(info.field_name) or [])
        return self._page(rows, args, info, lambda r: (rows.index(r),))

    def _page(self, rows: list[dict[str, Any]], args: dict[str, Any], info: Any, key: Any) -> dict[str, Any]:
        first = args.get("first") or args.get("last")
        if first is None and not info.context.get("bulk"):
            raise GraphQLError("you must provide one of first or last")
        if args.get("after"):
            after = tuple(json.loads(base64.b64decode(args["after"])))
            rows = [r for r in rows if (tuple(key(r)) > after) != bool(args.get("reverse"))]
        page = rows if first is None else rows[: int(first)]

        def cursor(row: dict[str, Any]) -> str:
            return base64.b64encode(json.dumps(list(key(row))).encode()).decode()

        return {
            "nodes": page,
            "edges": [{"node": r, "cursor": cursor(r)} for r in page],
            "pageInfo": {
                "hasNextPage": len(rows) > len(page),
                "hasPreviousPage": bool(args.get("after")),
                "startCursor": cursor(page[0]) if page else None,
                "endCursor": cursor(page[-1]) if page else None,
            },
        }

    def _customer_by_identifier(self, _o: Any, _i: Any, identifier: dict[str, Any]) -> dict[str, Any] | None:
        for c in self.customers.values():
            if "id" in identifier and c["id"] == identifier["id"]:
                return c
            if (
                "emailAddress" in identifier
                and (c.get("defaultEmailAddress") or {}).get("emailAddress") == identifier["emailAddress"]
            ):
                return c
            custom = identifier.get("customId")
            if custom and c["_metafields"].get((custom.get("namespace"), custom["key"])) == custom["value"]:
                return c
        return None

    # --- mutations -------------------------------------------------------------------------------

    def _mutation(self, fn: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
        def resolve(_o: Any, info: Any, **args: Any) -> dict[str, Any]:
            directive = info.schema.get_directive("idempotent")
            values = get_directive_values(directive, info.field_nodes[0], info.variable_values) if directive else None
            key_value = (values or {}).get("key")
            try:
                return {**fn(info, key_value, **args), "userErrors": []}
            except UserErrors as exc:
                return {"userErrors": exc.errors}

        return resolve

    def _customer_fields(self, c: dict[str, Any], data: dict[str, Any]) -> None:
        email = data.get("email")
        if email is not None:
            taken = [
                o
                for o in self.customers.values()
                if o is not c and (o.get("defaultEmailAddress") or {}).get("emailAddress") == email
            ]
            if taken:
                raise UserErrors({"field": ["email"], "message": "Email has already been taken"})
            if "@" not in email:
                raise UserErrors({"field": ["email"], "message": "Email is invalid"})
            c["defaultEmailAddress"] = {
                **(
                    c.get("defaultEmailAddress")
                    or {"marketingState": "NOT_SUBSCRIBED", "marketingOptInLevel": None, "marketingUpdatedAt": None}
                ),
                "emailAddress": email,
            }
        if "phone" in data:
            c["defaultPhoneNumber"] = (
                None
                if not data["phone"]
                else {
                    "phoneNumber": data["phone"],
                    "smsMarketingConsent": {"state": "NEVER_SUBSCRIBED", "updatedAt": None},
                }
            )
        for k in ("firstName", "lastName", "note", "locale", "tags"):
            if k in data:
                c[k] = data[k]
        # Customer.locale and Customer.tags are non-null in the schema: an input null resets them to
        # the shop's primary locale and to no tags (https://shopify.dev/docs/api/admin-graphql/latest/objects/Customer)
        if c.get("locale") is None:
            c["locale"] = "pl"
        if c.get("tags") is None:
            c["tags"] = []
        for mf in data.get("metafields") or []:
            c["_metafields"][(mf.get("namespace"), mf["key"])] = mf["value"]
        c["updatedAt"] = self.now()

    def _customer_create(self, _info: Any, _key: Any, input: dict[str, Any]) -> dict[str, Any]:
        c: dict[str, Any] = {
            "__typename": "Customer",
            "id": self._gid("Customer"),
            "firstName": None,
            "lastName": None,
            "locale": "pl",
            "note": None,
            "tags": [],
            "createdAt": self.now(),
            "defaultEmailAddress": None,
            "defaultPhoneNumber": None,
            "defaultAddress": None,
            "addresses": [],
            "_metafields": {},
        }
        self._customer_fields(c, input)
        consent = input.get("emailMarketingConsent")
        if consent:
            c["defaultEmailAddress"].update(self._consent(consent))
        self.customers[c["id"]] = c
        self._fire("customers/create", c)
        return {"customer": c}

    def _customer_update(self, _info: Any, _key: Any, input: dict[str, Any]) -> dict[str, Any]:
        c = self.customers.get(input["id"])
        if c is None:
            raise UserErrors({"field": ["id"], "message": "Customer does not exist"})
        self._customer_fields(c, input)
        self._fire("customers/update", c)
        return {"customer": c}

    def _consent(self, consent: dict[str, Any]) -> dict[str, Any]:
        if consent["marketingState"] not in ("SUBSCRIBED", "UNSUBSCRIBED", "PENDING"):
            raise UserErrors(
                {
                    "field": ["input", "emailMarketingConsent", "marketingState"],
                    "message": "Marketing state is invalid",
                    "code": "INVALID",
                }
            )
        return {
            "marketingState": consent["marketingState"],
            "marketingOptInLevel": consent.get("marketingOptInLevel"),
            "marketingUpdatedAt": consent.get("consentUpdatedAt") or self.now(),
        }

    def _consent_update(self, _info: Any, _key: Any, input: dict[str, Any]) -> dict[str, Any]:
        c = self.customers.get(input["customerId"])
        if c is None or not c.get("defaultEmailAddress"):
            raise UserErrors(
                {"field": ["input", "customerId"], "message": "Customer must have an email address", "code": "INVALID"}
            )
        c["defaultEmailAddress"].update(self._consent(input["emailMarketingConsent"]))
        c["updatedAt"] = self.now()
        self._fire("customers/update", c)
        return {"customer": c}

    def _address_create(
        self, _info: Any, _key: Any, customerId: str, address: dict[str, Any], setAsDefault: bool = False
    ) -> dict[str, Any]:
        c = self.customers.get(customerId)
        if c is None:
            raise UserErrors({"field": ["customerId"], "message": "Customer does not exist"})
        a = self._set_address(c, address, None)
        c["updatedAt"] = self.now()
        self._fire("customers/update", c)
        return {"address": a}

    def _address_update(
        self,
        _info: Any,
        _key: Any,
        customerId: str,
        addressId: str,
        address: dict[str, Any],
        setAsDefault: bool = False,
    ) -> dict[str, Any]:
        c = self.customers.get(customerId)
        if c is None or all(a["id"] != addressId for a in c["addresses"]):
            raise UserErrors({"field": ["addressId"], "message": "Address does not exist"})
        a = self._set_address(c, address, addressId)
        c["updatedAt"] = self.now()
        self._fire("customers/update", c)
        return {"address": a}

    def _order_update(self, _info: Any, _key: Any, input: dict[str, Any]) -> dict[str, Any]:
        o = self.orders.get(input["id"])
        if o is None:
            raise UserErrors({"field": ["id"], "message": "Order does not exist"})
        for k in ("tags", "note", "email", "phone"):
            if k in input:
                o[k] = input[k]
        o["updatedAt"] = self.now()
        self._fire("orders/updated", o)
        return {"order": o}

    def _fulfillment_create(
        self, _info: Any, _key: Any, fulfillment: dict[str, Any], message: str | None = None
    ) -> dict[str, Any]:
        wanted = [x["fulfillmentOrderId"] for x in fulfillment["lineItemsByFulfillmentOrder"]]
        order = next(
            (o for o in self.orders.values() if any(fo["id"] in wanted for fo in o["fulfillmentOrders"])), None
        )
        if order is None:
            raise UserErrors(
                {
                    "field": ["fulfillment", "lineItemsByFulfillmentOrder"],
                    "message": "Fulfillment order does not exist.",
                }
            )
        for fo in order["fulfillmentOrders"]:
            if fo["id"] in wanted:
                if fo["status"] != "OPEN":
                    raise UserErrors(
                        {
                            "field": ["fulfillment"],
                            "message": f"Fulfillment order {fo['id']} has an unfulfillable status= closed.",
                        }
                    )
                fo["status"] = "CLOSED"
        tracking = fulfillment.get("trackingInfo") or {}
        now = self.now()
        f = {
            "__typename": "Fulfillment",
            "id": self._gid("Fulfillment"),
            "status": "SUCCESS",
            "createdAt": now,
            "updatedAt": now,
            "trackingInfo": [
                {"number": tracking.get("number"), "company": tracking.get("company"), "url": tracking.get("url")}
            ]
            if tracking
            else [],
        }
        order["fulfillments"].append(f)
        if all(fo["status"] == "CLOSED" for fo in order["fulfillmentOrders"]):
            order["displayFulfillmentStatus"] = "FULFILLED"
        order["updatedAt"] = now
        self._fire("orders/updated", order)
        return {"fulfillment": f}

    def _inventory_set(self, _info: Any, key: str | None, input: dict[str, Any]) -> dict[str, Any]:
        if not key:
            raise UserErrors(
                {
                    "field": ["input"],
                    "message": "An idempotency key is required (@idempotent).",
                    "code": "INVALID_REFERENCE_DOCUMENT",
                }
            )
        if key in self.idempotency:
            return copy.deepcopy(self.idempotency[key])
        if input["name"] not in ("available", "on_hand"):
            raise UserErrors(
                {
                    "field": ["input", "name"],
                    "message": "The quantity name must be available or on_hand.",
                    "code": "INVALID_NAME",
                }
            )
        errors: list[dict[str, Any]] = []
        targets: list[tuple[dict[str, Any], dict[str, Any], dict[str, Any], int]] = []
        for i, q in enumerate(input["quantities"]):
            if "changeFromQuantity" not in q:
                errors.append(
                    {
                        "field": ["input", "quantities", str(i), "changeFromQuantity"],
                        "message": "changeFromQuantity is required.",
                        "code": "COMPARE_QUANTITY_REQUIRED",
                    }
                )
                continue
            item = self.items.get(q["inventoryItemId"])
            level = next(
                (lv for lv in (item or {}).get("inventoryLevels", []) if lv["location"]["id"] == q["locationId"]), None
            )
            if level is None:
                errors.append(
                    {
                        "field": ["input", "quantities", str(i), "locationId"],
                        "message": "The specified inventory item is not stocked at the location.",
                        "code": "INVALID_LOCATION",
                    }
                )
                continue
            current = next(x for x in level["quantities"] if x["name"] == input["name"])
            if q["changeFromQuantity"] is not None and q["changeFromQuantity"] != current["quantity"]:
                errors.append(
                    {
                        "field": ["input", "quantities", str(i), "changeFromQuantity"],
                        "message": "The specified compare quantity does not match the current quantity.",
                        "code": "CHANGE_FROM_QUANTITY_STALE",
                    }
                )
                continue
            assert item is not None
            targets.append((item, level, current, q["quantity"]))
        if errors:  # all or nothing
            raise UserErrors(*errors)
        now = self.now()
        for stocked, level, current, quantity in targets:
            current["quantity"] = quantity
            level["updatedAt"] = now
            stocked["updatedAt"] = now
            self._fire("inventory_levels/update", level, stocked)
        answer = {"inventoryAdjustmentGroup": {"id": self._gid("InventoryAdjustmentGroup")}}
        self.idempotency[key] = answer
        return answer

    def set_available(self, sku: str, location: str, quantity: int) -> None:
        """A merchant's stock count in the admin."""
        with self.lock:
            level = self.level(sku, location)
            item = next(i for i in self.items.values() if i["sku"] == sku)
            next(q for q in level["quantities"] if q["name"] == "available")["quantity"] = quantity
            level["updatedAt"] = item["updatedAt"] = self.now()
            self._fire("inventory_levels/update", level, item)

    def _webhook_create(self, _info: Any, _key: Any, topic: str, webhookSubscription: dict[str, Any]) -> dict[str, Any]:
        uri = webhookSubscription.get("uri") or webhookSubscription.get("callbackUrl")
        if not uri:
            raise UserErrors({"field": ["webhookSubscription", "uri"], "message": "Address can't be blank"})
        sub = {
            "__typename": "WebhookSubscription",
            "id": self._gid("WebhookSubscription"),
            "topic": topic,
            "uri": uri,
            "metafieldNamespaces": webhookSubscription.get("metafieldNamespaces") or [],
        }
        self.subscriptions.append(sub)
        return {"webhookSubscription": sub}

    # --- bulk operations -------------------------------------------------------------------------

    def _bulk_run(self, _info: Any, _key: Any, query: str, groupObjects: bool) -> dict[str, Any]:
        running = [op for op in self.bulk_ops.values() if op["status"] in ("CREATED", "RUNNING")]
        if running:
            raise UserErrors(
                {
                    "field": ["query"],
                    "message": "A bulk query operation for this app and shop is already in progress.",
                    "code": "OPERATION_IN_PROGRESS",
                }
            )
        gid = self._gid("BulkOperation")
        result = execute_sync(self.schema, parse(query), context_value={"bulk": True})
        if result.errors:
            raise UserErrors({"field": ["query"], "message": str(result.errors[0].message), "code": "INVALID"})
        lines: list[str] = []
        roots = 0
        for conn in (result.data or {}).values():
            for edge in conn["edges"]:
                roots += 1
                lines.extend(self._jsonl(edge["node"], None))
        name = uuid.uuid4().hex
        self.bulk_files[name] = ("\n".join(lines) + "\n").encode() if lines else b""
        op = {
            "__typename": "BulkOperation",
            "id": gid,
            "status": "CREATED",
            "errorCode": None,
            "objectCount": str(len(lines)),
            "rootObjectCount": str(roots),
            "url": f"{self.url}/bulk/{name}.jsonl" if lines else None,
            "partialDataUrl": None,
            "createdAt": self.now(),
            "completedAt": None,
            "query": query,
            "type": "QUERY",
            "_polls": 0,
        }
        self.bulk_ops[gid] = op
        return {"bulkOperation": self._public(op, final=False)}

    def _jsonl(self, node: dict[str, Any], parent: str | None) -> list[str]:
        own: dict[str, Any] = {}
        children: list[str] = []
        for k, v in node.items():
            if isinstance(v, dict) and "edges" in v:
                for edge in v["edges"]:
                    children.extend(self._jsonl(edge["node"], node["id"]))
            else:
                own[k] = v
        if parent is not None:
            own["__parentId"] = parent
        return [json.dumps(own, ensure_ascii=False), *children]

    def _poll_bulk(self, gid: str) -> dict[str, Any]:
        op = self.bulk_ops[gid]
        if op["status"] in ("CREATED", "RUNNING"):
            op["_polls"] += 1
            if op["_polls"] > self.bulk_polls:
                op["status"] = "COMPLETED"
                op["completedAt"] = self.now()
            else:
                op["status"] = "RUNNING"
        return self._public(op, final=True)

    @staticmethod
    def _public(op: dict[str, Any], final: bool) -> dict[str, Any]:
        out = {k: v for k, v in op.items() if k == "__typename" or not k.startswith("_")}
        if out["status"] != "COMPLETED":
            out["url"] = None
        return out
