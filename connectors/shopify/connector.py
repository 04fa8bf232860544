"""The Shopify connector: Admin GraphQL API at a pinned version, over httpx.

Settings: ``shop`` (``acme-pl.myshopify.com``) or ``base_url`` (tests: ``http://127.0.0.1:port``),
``token`` (``X-Shopify-Access-Token``), ``webhook_secret``, ``api_version`` (default 2026-10),
``page_size``, ``max_wait`` (seconds of throttling waited out inside one call), ``settle`` (seconds
after which a second of ``updated_at`` is taken as complete, see cursor.py; default 5).

Reads are incremental (``updated_at:>=T``, see cursor.py), backfills go through bulk operations,
writes are idempotent by the canonical id kept in the ``synchub.id`` metafield: a customer is looked
up by it (``customerByIdentifier``) before one is created, and created with it in the same call, so a
crash between the create and our cross-reference finds the customer again instead of making a second.
``customerByIdentifier(customId:)`` needs a metafield definition ``synchub.id`` of type ``id``
(unique values) in the shop: https://shopify.dev/docs/apps/build/custom-data/metafields/working-with-custom-ids
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar

import httpx

from connectors.shopify import documents as doc
from connectors.shopify.bulk import reassemble
from connectors.shopify.client import GraphQLClient
from connectors.shopify.cursor import SETTLE_SECONDS, Cursor, stamp
from connectors.shopify.search import any_of, term
from connectors.shopify.webhooks import CONVERT, TOPICS, header, verify
from core.connector import (
    ChangePage,
    Connector,
    InboundEvent,
    NativeRecord,
    RateLimit,
    WebhookRejected,
    WriteRequest,
    WriteResult,
    secret,
)
from core.errors import ConfigError, PermanentError, RecordRejected, SynchubError, TransientError

DEFAULT_VERSION = "2026-10"
SYNCHUB_NS, SYNCHUB_KEY = "synchub", "id"
NOT_GRANTED = ("NOT_SUBSCRIBED", "UNSUBSCRIBED", "INVALID", "REDACTED")


class ShopifyConnector(Connector):
    kind: ClassVar[str] = "shopify"
    batch_size: ClassVar[int] = 25
    # 100 points/s restore on the Standard plan; a customer write costs ~10-30 points
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=4, per_seconds=1.0, concurrency=1)
    entities: ClassVar[tuple[str, ...]] = ("customer", "order", "product", "stock_level", "shipment")

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any] | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(name, settings)
        s = self.settings
        base = s.get("base_url") or (f"https://{s['shop']}" if s.get("shop") else None)
        if not base:
            raise ConfigError(f"{name}: set `shop` (acme.myshopify.com) or `base_url`")
        token = secret(s, "token")
        if not token:
            raise ConfigError(f"{name}: `token` (the Admin API access token) is required")
        self.version = str(s.get("api_version") or DEFAULT_VERSION)
        self.page_size = int(s.get("page_size", 250))
        self.settle = float(s.get("settle", SETTLE_SECONDS))
        self.sleep = sleep
        self.client = GraphQLClient(
            base,
            self.version,
            token,
            timeout=float(s.get("timeout", 30.0)),
            max_wait=float(s.get("max_wait", 60.0)),
            sleep=sleep,
        )
        # results of bulk operations live on a storage host: never send it our token
        self.download = httpx.Client(timeout=60.0)
        self._locations: dict[str, str] | None = None  # name → id
        self._location_names: dict[str, str] = {}  # id → name
        self._items: dict[str, dict[str, Any]] = {}  # sku → {id, levels: {location id: level id}}
        self._item_skus: dict[str, str] = {}  # item id → sku

    # --- transport -------------------------------------------------------------------------------

    def _gql(self, document: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        self.calls += 1
        return self.client.execute(document, variables)

    def _gql_dated(self, document: str, variables: dict[str, Any]) -> tuple[dict[str, Any], datetime | None]:
        """``_gql`` with the shop's time of the answer (the incremental cursor closes seconds by it)."""
        self.calls += 1
        return self.client.execute_dated(document, variables)

    @property
    def points(self) -> float:
        """Actual cost points spent so far (benchmarks, metrics)."""
        return self.client.points

    # --- reads -----------------------------------------------------------------------------------

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        if entity not in doc.READS:
            raise ConfigError(f"{self.name}: cannot read {entity!r} (reads {', '.join(doc.READS)})")
        cur = Cursor.decode(cursor)
        variables: dict[str, Any] = {"first": min(limit, self.page_size, doc.PAGE_SIZES[entity]), "after": cur.after}
        if cur.since:
            variables["query"] = term("updated_at", cur.since, cur.comparison)
        data, answered_at = self._gql_dated(doc.READS[entity], variables)
        conn = data[doc.ROOT_FIELDS[entity]]
        nodes: list[dict[str, Any]] = conn["nodes"]
        info = conn["pageInfo"]
        keep, nxt = cur.step(
            [(n["id"], n["updatedAt"]) for n in nodes],
            info["hasNextPage"],
            info["endCursor"],
            answered_at,
            self.settle,
        )
        records: list[NativeRecord] = []
        for i in keep:
            records.extend(self._records(entity, nodes[i]))
        return ChangePage(records, nxt.encode(), more=bool(info["hasNextPage"]))

    def _records(self, entity: str, node: dict[str, Any]) -> list[NativeRecord]:
        if entity == "stock_level":
            return [_record(level) for level in self._levels(node)]
        return [_record(node)]

    def _levels(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        """An inventory item's levels as InventoryLevel records (the shape the mapping reads)."""
        if item.get("sku"):
            self._item_skus[item["id"]] = item["sku"]
        out = []
        for level in (item.get("inventoryLevels") or {}).get("nodes", []):
            loc = level.get("location") or {}
            if loc.get("id") and loc.get("name"):
                self._location_names[loc["id"]] = loc["name"]
            out.append({**level, "item": {"id": item["id"], "sku": item.get("sku")}})
        return out

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        if not native_ids:
            return []
        out: list[NativeRecord] = []
        for node in self._gql(doc.NODES, {"ids": native_ids})["nodes"]:
            if node is not None:
                out.extend(self._records("stock_level" if node["__typename"] == "InventoryItem" else entity, node))
        return out

    def fetch_written(self, entity: str, canonical_ids: list[str]) -> list[NativeRecord]:
        """Customers by the synchub metafield our creates set (customerByIdentifier: one call each)."""
        if entity != "customer":
            raise NotImplementedError
        out: list[NativeRecord] = []
        for cid in canonical_ids:
            found = self._customer_written(cid)
            if found is not None:
                out.extend(self._records(entity, found))
        return out

    def _customer_written(self, canonical_id: str) -> dict[str, Any] | None:
        """The customer our create stamped with ``canonical_id`` (the synchub metafield), or None."""
        identifier = {"customId": {"namespace": SYNCHUB_NS, "key": SYNCHUB_KEY, "value": canonical_id}}
        found: dict[str, Any] | None = self._gql(doc.CUSTOMER_BY_ID, {"identifier": identifier})["customerByIdentifier"]
        return found

    def backfill(
        self, entity: str, *, page: int = 500, poll_every: float = 1.0, timeout: float = 3600.0
    ) -> Iterator[ChangePage]:
        """Every record through a bulk operation, in pages; only the last page carries a cursor.

        That cursor starts incremental reads at the moment the operation was created, so changes
        made while it ran are read again rather than lost. Save it only after the last page.
        """
        if entity not in doc.BULK_QUERIES:
            raise ConfigError(f"{self.name}: no bulk backfill for {entity!r}")
        started = self._gql(doc.BULK_RUN, {"query": doc.BULK_QUERIES[entity]})["bulkOperationRunQuery"]
        _raise_user_errors(started["userErrors"], transient_codes=frozenset({"OPERATION_IN_PROGRESS"}))
        op = started["bulkOperation"]
        deadline = time.monotonic() + timeout
        while op["status"] in ("CREATED", "RUNNING"):
            if time.monotonic() > deadline:
                raise TransientError(f"{self.name}: bulk operation {op['id']} still {op['status']}")
            self.sleep(poll_every)
            op = self._gql(doc.BULK_POLL, {"id": op["id"]})["node"]
        if op["status"] != "COMPLETED":
            raise TransientError(f"{self.name}: bulk operation {op['status']} ({op.get('errorCode')})")
        final = Cursor(stamp(op["createdAt"])).encode()
        if not op.get("url"):  # no objects at all
            yield ChangePage([], final)
            return
        batch: list[NativeRecord] = []
        with self.download.stream("GET", op["url"]) as response:
            if response.status_code != 200:
                raise TransientError(f"{self.name}: bulk result download failed (HTTP {response.status_code})")
            for obj in reassemble(response.iter_lines(), doc.BULK_CHILDREN):
                batch.append(_record(obj))
                if len(batch) >= page:
                    yield ChangePage(batch, None, more=True)
                    batch = []
        yield ChangePage(batch, final)

    # --- webhooks --------------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        key = secret(self.settings, "webhook_secret")
        if not key:
            raise WebhookRejected("no webhook_secret configured: cannot verify Shopify webhooks", status=401)
        given = header(headers, "X-Shopify-Hmac-Sha256")
        if not given:
            raise WebhookRejected("webhook has no X-Shopify-Hmac-Sha256 header", status=401)
        if not verify(key, body, given):
            raise WebhookRejected("webhook HMAC does not match the body (X-Shopify-Hmac-Sha256)", status=401)
        topic = header(headers, "X-Shopify-Topic")
        # one event can fire several topics; a redelivery repeats both ids, so (topic, event) dedups
        event = header(headers, "X-Shopify-Event-Id") or header(headers, "X-Shopify-Webhook-Id")
        if not topic or not event:
            raise WebhookRejected("X-Shopify-Topic and X-Shopify-Event-Id/X-Shopify-Webhook-Id are required")
        payload = _json_object(body)
        event_id = f"{topic}:{event}"
        known = TOPICS.get(topic)
        if known is None:  # recorded as it came; the pipeline decides what to do with it
            return [InboundEvent(event_id, topic.split("/")[0], topic, payload)]
        entity, op = known
        target = payload.get("customer") if topic == "customers/redact" else payload
        needed = ("inventory_item_id", "location_id") if entity == "stock_level" else ("id",)
        missing = [k for k in needed if not isinstance(target, dict) or target.get(k) is None]
        if missing:
            raise WebhookRejected(f"{topic} payload is not a Shopify {entity} (no {', '.join(missing)})", status=422)
        assert isinstance(target, dict)
        if op in ("delete", "erase"):
            kind = {"customer": "Customer", "order": "Order", "product": "Product"}[entity]
            return [InboundEvent(event_id, entity, topic, {"id": f"gid://shopify/{kind}/{target['id']}"}, op)]  # type: ignore[arg-type]
        try:
            record = CONVERT[entity](payload)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else type(exc).__name__
            raise WebhookRejected(f"{topic} payload is not a Shopify {entity} ({what})", status=422) from None
        if entity == "stock_level":
            record = self._complete_level(record)
        return [InboundEvent(event_id, entity, topic, record)]

    def _complete_level(self, record: dict[str, Any]) -> dict[str, Any]:
        """inventory_levels/update has no SKU or location name: fill them (cached; else one read)."""
        item_id, loc_id = record["item"]["id"], record["location"]["id"]
        if item_id not in self._item_skus:
            self.fetch("stock_level", [item_id])
        if loc_id not in self._location_names:
            self._load_locations()
        record["item"]["sku"] = self._item_skus.get(item_id)
        record["location"]["name"] = self._location_names.get(loc_id)
        return record

    def subscribe(
        self, uri: str, topics: list[str], metafield_namespaces: tuple[str, ...] = ("loyalty", "synchub")
    ) -> list[str]:
        """Register webhook subscriptions (``customers/update`` → ``CUSTOMERS_UPDATE``); their ids."""
        ids = []
        for topic in topics:
            answer = self._gql(
                doc.WEBHOOK_CREATE,
                {
                    "topic": topic.replace("/", "_").upper(),
                    "sub": {"uri": uri, "format": "JSON", "metafieldNamespaces": list(metafield_namespaces)},
                },
            )["webhookSubscriptionCreate"]
            _raise_user_errors(answer["userErrors"])
            ids.append(answer["webhookSubscription"]["id"])
        return ids

    # --- writes ----------------------------------------------------------------------------------

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        if entity == "stock_level":
            return self._write_stock(batch)
        one = {"customer": self._write_customer, "order": self._write_order, "shipment": self._write_shipment}.get(
            entity
        )
        if one is None:
            raise ConfigError(f"{self.name}: cannot write {entity!r}")
        results = []
        for req in batch:
            try:
                if req.op != "upsert":
                    raise RecordRejected(
                        f"{req.op} of a Shopify {entity} is not supported by synchub", code="UNSUPPORTED"
                    )
                results.append(one(req))
            except (RecordRejected, TransientError) as exc:
                results.append(WriteResult(error=exc))
            except PermanentError as exc:
                results.append(WriteResult(error=exc))
        return results

    def _write_customer(self, req: WriteRequest) -> WriteResult:
        p = req.payload
        customer_id = req.native_id
        current: dict[str, Any] | None = None
        if customer_id is None:
            current = self._customer_written(req.canonical_id)
            customer_id = current["id"] if current else None
        fields = _customer_input(p, req.canonical_id)
        email = p.get("defaultEmailAddress") or {}
        if customer_id is None:
            if email.get("marketingState") in ("SUBSCRIBED", "UNSUBSCRIBED", "PENDING") and fields.get("email"):
                fields["emailMarketingConsent"] = _consent(email)
            answer = self._gql(doc.CUSTOMER_CREATE, {"input": fields})["customerCreate"]
            _raise_user_errors(answer["userErrors"])
        else:
            answer = self._gql(doc.CUSTOMER_UPDATE, {"input": {"id": customer_id, **fields}})["customerUpdate"]
            _raise_user_errors(answer["userErrors"])
        customer = answer["customer"]
        updated = customer["updatedAt"]
        if "defaultAddress" in p and p["defaultAddress"] is not None:
            self._write_address(customer, p["defaultAddress"])
        state = email.get("marketingState")
        now_state = (customer.get("defaultEmailAddress") or {}).get("marketingState")
        # "not granted" has several states at Shopify: never turn NOT_SUBSCRIBED into an unsubscribe event
        same = state == now_state or (state == "UNSUBSCRIBED" and now_state in NOT_GRANTED)
        if customer_id is not None and state in ("SUBSCRIBED", "UNSUBSCRIBED", "PENDING") and not same:
            answer = self._gql(
                doc.EMAIL_CONSENT, {"input": {"customerId": customer["id"], "emailMarketingConsent": _consent(email)}}
            )["customerEmailMarketingConsentUpdate"]
            _raise_user_errors(answer["userErrors"])
            updated = answer["customer"]["updatedAt"]
        return WriteResult(native_id=customer["id"], updated_at=_dt(updated))

    def _write_address(self, customer: dict[str, Any], wanted: dict[str, Any]) -> None:
        have = customer.get("defaultAddress") or {}
        address = {("countryCode" if k == "countryCodeV2" else k): v for k, v in wanted.items() if k != "id"}
        if have and all(have.get(k) == v for k, v in wanted.items() if k != "id"):
            return  # already so: no write, no echo
        if have.get("id"):
            variables = {"customerId": customer["id"], "addressId": have["id"], "address": address}
            answer = self._gql(doc.ADDRESS_UPDATE, variables)["customerAddressUpdate"]
        else:
            answer = self._gql(doc.ADDRESS_CREATE, {"customerId": customer["id"], "address": address})[
                "customerAddressCreate"
            ]
        _raise_user_errors(answer["userErrors"], prefix="address")

    def _write_order(self, req: WriteRequest) -> WriteResult:
        if req.native_id is None:
            raise RecordRejected(
                "orders are created by the shop; this one is not linked to a Shopify order", code="NOT_FOUND"
            )
        fields = {k: req.payload[k] for k in ("tags", "note") if k in req.payload}
        answer = self._gql(doc.ORDER_UPDATE, {"input": {"id": req.native_id, **fields}})["orderUpdate"]
        _raise_user_errors(answer["userErrors"])
        return WriteResult(native_id=answer["order"]["id"], updated_at=_dt(answer["order"]["updatedAt"]))

    def _write_shipment(self, req: WriteRequest) -> WriteResult:
        """A fulfilment with the tracking number and carrier (from InPost); never two for one parcel."""
        p = req.payload
        order_id = (p.get("order") or {}).get("id")
        info = p.get("trackingInfo") or {}
        # the mapping writes the read shape (Fulfillment.trackingInfo is a list); the input is one object
        tracking = dict(info[0] if isinstance(info, list) and info else info if isinstance(info, dict) else {})
        if not order_id:
            return WriteResult()  # a parcel that fulfils no shop order (a return parcel): nothing to do here
        if not tracking.get("number"):
            raise RecordRejected("a fulfilment needs trackingInfo.number", code="INVALID")
        state = self._gql(doc.ORDER_FULFILMENT_STATE, {"id": order_id})["order"]
        if state is None:
            raise RecordRejected(f"order {order_id} does not exist in Shopify", code="NOT_FOUND")
        for f in state["fulfillments"]:
            if any(t.get("number") == tracking["number"] for t in f["trackingInfo"]):
                return WriteResult(native_id=f["id"])  # created before (a retry after a lost answer)
        open_orders = [
            fo["id"] for fo in state["fulfillmentOrders"]["nodes"] if fo["status"] in ("OPEN", "IN_PROGRESS")
        ]
        if not open_orders:
            raise RecordRejected(f"order {order_id} has nothing left to fulfil", code="NOTHING_TO_FULFIL")
        fulfilment = {
            "lineItemsByFulfillmentOrder": [{"fulfillmentOrderId": fo} for fo in open_orders],
            "trackingInfo": {k: v for k, v in tracking.items() if k in ("number", "company", "url") and v},
            "notifyCustomer": bool(p.get("notifyCustomer", False)),
        }
        answer = self._gql(doc.FULFILMENT_CREATE, {"fulfillment": fulfilment})["fulfillmentCreate"]
        _raise_user_errors(answer["userErrors"])
        return WriteResult(native_id=answer["fulfillment"]["id"], updated_at=_dt(answer["fulfillment"]["updatedAt"]))

    def _load_locations(self) -> dict[str, str]:
        names: dict[str, str] = {}
        after = None
        while True:
            conn = self._gql(doc.LOCATIONS, {"first": 250, "after": after})["locations"]
            for loc in conn["nodes"]:
                names[loc["name"]] = loc["id"]
                self._location_names[loc["id"]] = loc["name"]
            if not conn["pageInfo"]["hasNextPage"]:
                break
            after = conn["pageInfo"]["endCursor"]
        self._locations = names
        return names

    def _load_items(self, skus: list[str]) -> None:
        missing = sorted({s for s in skus if s not in self._items})
        for i in range(0, len(missing), 10):  # 10 items x 20 levels stays under the 1,000-point limit
            chunk = missing[i : i + 10]
            conn = self._gql(doc.ITEMS_BY_SKU, {"first": 10, "query": any_of("sku", chunk)})["inventoryItems"]
            for item in conn["nodes"]:
                if item.get("sku") in chunk:
                    levels = {lv["location"]["id"]: lv["id"] for lv in item["inventoryLevels"]["nodes"]}
                    self._items[item["sku"]] = {"id": item["id"], "levels": levels}
                    self._item_skus[item["id"]] = item["sku"]

    def _write_stock(self, batch: list[WriteRequest]) -> list[WriteResult]:
        """All quantities of a batch in one inventorySetQuantities call (absolute values: idempotent)."""
        locations = self._locations if self._locations is not None else self._load_locations()
        self._load_items([str((r.payload.get("item") or {}).get("sku") or "") for r in batch])
        results: list[WriteResult | None] = [None] * len(batch)
        sent: list[tuple[int, dict[str, Any], str]] = []
        for i, req in enumerate(batch):
            sku = str((req.payload.get("item") or {}).get("sku") or "")
            location = str((req.payload.get("location") or {}).get("name") or "")
            quantity = next(
                (q.get("quantity") for q in req.payload.get("quantities", []) if q.get("name") == "available"), None
            )
            item = self._items.get(sku)
            if item is None:
                results[i] = WriteResult(
                    error=RecordRejected(f"no inventory item with SKU {sku!r}", code="UNKNOWN_SKU")
                )
            elif location not in locations:
                results[i] = WriteResult(
                    error=RecordRejected(f"no location named {location!r}", code="UNKNOWN_LOCATION")
                )
            elif not isinstance(quantity, int):
                results[i] = WriteResult(
                    error=RecordRejected("an available quantity (whole units) is required", code="INVALID")
                )
            else:
                loc_id = locations[location]
                level = item["levels"].get(loc_id) or f"gid://shopify/InventoryLevel/?inventory_item_id={item['id']}"
                q = {
                    "inventoryItemId": item["id"],
                    "locationId": loc_id,
                    "quantity": quantity,
                    "changeFromQuantity": None,
                }
                sent.append((i, q, level))
        if sent:
            quantities = [q for _, q, _ in sent]
            key = hashlib.sha256(json.dumps(quantities, sort_keys=True).encode()).hexdigest()[:32]
            variables = {
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": f"gid://synchub/StockSync/{key}",
                    "quantities": quantities,
                },
                "key": key,
            }
            try:
                answer = self._gql(doc.INVENTORY_SET, variables)["inventorySetQuantities"]
            except SynchubError as exc:
                for i, _, _ in sent:
                    results[i] = WriteResult(error=exc)
                answer = None
            if answer is not None:
                errors = answer["userErrors"]
                own: dict[int, RecordRejected] = {}
                general: list[str] = []
                for e in errors:
                    field = e.get("field") or []
                    if len(field) >= 3 and field[1] == "quantities" and str(field[2]).isdigit():
                        own[int(field[2])] = _rejected(e)
                    else:
                        general.append(e.get("message", ""))
                for n, (i, _, level) in enumerate(sent):
                    if n in own:
                        results[i] = WriteResult(error=own[n])
                    elif general:
                        results[i] = WriteResult(error=RecordRejected("; ".join(general), code="USER_ERROR"))
                    elif errors:  # Shopify applies all or nothing: this one was fine, send it again
                        results[i] = WriteResult(
                            error=TransientError("not applied: another quantity in its batch was refused")
                        )
                    else:
                        results[i] = WriteResult(native_id=level)
        return [r if r is not None else WriteResult(error=PermanentError("not written")) for r in results]

    def close(self) -> None:
        self.client.close()
        self.download.close()


def _record(node: dict[str, Any]) -> NativeRecord:
    return NativeRecord(node["id"], node, False, _dt(node.get("updatedAt")))


def _dt(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _customer_input(p: dict[str, Any], canonical_id: str) -> dict[str, Any]:
    fields: dict[str, Any] = {k: p[k] for k in ("firstName", "lastName", "note", "locale", "tags") if k in p}
    if "defaultEmailAddress" in p:
        fields["email"] = (p["defaultEmailAddress"] or {}).get("emailAddress")
    if "defaultPhoneNumber" in p:
        fields["phone"] = (p["defaultPhoneNumber"] or {}).get("phoneNumber")
    metafields = [{"namespace": SYNCHUB_NS, "key": SYNCHUB_KEY, "type": "id", "value": canonical_id}]
    loyalty = (p.get("loyaltyId") or {}).get("value")
    if loyalty:
        metafields.append({"namespace": "loyalty", "key": "id", "type": "single_line_text_field", "value": loyalty})
    fields["metafields"] = metafields
    return fields


def _consent(email: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"marketingState": email["marketingState"]}
    if email.get("marketingOptInLevel"):
        out["marketingOptInLevel"] = email["marketingOptInLevel"]
    if email.get("marketingUpdatedAt"):
        out["consentUpdatedAt"] = email["marketingUpdatedAt"]
    return out


def _rejected(error: dict[str, Any], prefix: str | None = None) -> RecordRejected:
    field = ".".join(str(f) for f in (error.get("field") or []))
    where = ".".join(x for x in (prefix, field) if x)
    message = error.get("message", "refused")
    return RecordRejected(f"{message} (field: {where})" if where else message, code=error.get("code") or where or None)


def _raise_user_errors(
    errors: list[dict[str, Any]], *, transient_codes: frozenset[str] = frozenset(), prefix: str | None = None
) -> None:
    if not errors:
        return
    first = errors[0]
    if first.get("code") in transient_codes:
        raise TransientError(first.get("message", "busy"))
    raise _rejected(first, prefix)


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a refusal saying exactly what is wrong with it (never its content)."""
    if not body.strip():
        raise WebhookRejected("webhook body is empty")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WebhookRejected(f"webhook body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise WebhookRejected(f"webhook body is not JSON ({exc})") from None
    if not isinstance(payload, dict):
        raise WebhookRejected("webhook body is not a JSON object")
    return payload
