"""The InPost (ShipX) connector: parcel-locker shipments for orders, their labels and their status.

What it reads and writes, per canonical entity (see docs/inpost.md for the why):

* ``order`` (write): an order whose mapped payload names a ShipX service — the mapping gives one
  only to parcel-locker orders — becomes one shipment. The order's canonical id travels as ShipX's
  ``reference``; before every create the connector searches shipments by that reference, so a
  retried or replayed create finds the first shipment instead of making a second. Other orders are
  acknowledged with nothing to do. The locker point is checked first through the points endpoint
  (cached), so an unknown point is a precise ``RecordRejected`` ("point KRA99X does not exist").
* ``return`` (write): a return shipment (``is_return``) addressed to the merchant (settings).
* ``shipment`` (read): shipments changed since the cursor, newest-first pages of the shipments list
  sorted by ``updated_at`` walked back to the cursor, each with its tracking history.
* ``touchpoint`` (read): the customer-facing moments of that history (parcel in the locker, picked
  up, …), one record per status event.

Webhooks: ShipX does not sign them (they come from 91.216.25.0/24 — Webhooks page below). The
connector therefore trusts nothing in the body but the shipment id: it checks the organization,
then reads the shipment with its own token; a forged call can at most make it re-read one of its
own shipments.

ShipX pages: shipments https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/11731061,
search/sort https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153512/Shipment+search+and+sorting,
tracking https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/28639244,
points https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153493,
webhooks https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153494/Webhooks.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar

from connectors.inpost.client import ShipXClient
from core.connector import (
    ChangePage,
    Connector,
    InboundEvent,
    NativeRecord,
    RateLimit,
    WebhookRejected,
    WriteRequest,
    WriteResult,
    register_connector,
    secret,
)
from core.errors import ConfigError, RecordRejected, SynchubError

DEFAULT_TOUCHPOINT_STATUSES = (
    "ready_to_pickup",
    "delivered",
    "pickup_time_expired",
    "returned_to_sender",
)
"""Tracking statuses that are a moment of the customer's journey (not the parcel's trip between depots)."""

PER_PAGE = 100  # ShipX lists answer at most 100 items a page


def _parse_ts(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class _Cursor:
    """``<updated_at ISO>|<ids seen at exactly that time>``: strictly-after reads without losing ties."""

    def __init__(self, since: datetime | None, ids: set[int]) -> None:
        self.since, self.ids = since, ids

    @classmethod
    def parse(cls, text: str | None) -> _Cursor:
        if not text:
            return cls(None, set())
        stamp, _, ids = text.partition("|")
        return cls(datetime.fromisoformat(stamp), {int(i) for i in ids.split(",") if i})

    def seen(self, item: dict[str, Any]) -> bool:
        ts = _parse_ts(item.get("updated_at"))
        if self.since is None or ts is None:
            return False
        return ts < self.since or (ts == self.since and int(item["id"]) in self.ids)

    @staticmethod
    def after(items: list[dict[str, Any]], previous: _Cursor) -> str | None:
        if not items:
            return None
        last = max(items, key=lambda i: _parse_ts(i["updated_at"]) or datetime.min)
        stamp = _parse_ts(last["updated_at"])
        assert stamp is not None
        ids = {int(i["id"]) for i in items if _parse_ts(i["updated_at"]) == stamp}
        if previous.since == stamp:
            ids |= previous.ids
        return f"{stamp.isoformat()}|{','.join(str(i) for i in sorted(ids))}"


@register_connector
class InPostConnector(Connector):
    """ShipX over httpx. Settings: ``base_url``, ``organization_id``, ``token`` (secret), and optional
    ``points_url``, ``point_cache_seconds`` (3600), ``missing_point_cache_seconds`` (60),
    ``default_parcel_template`` (small), ``touchpoint_statuses``, ``with_tracking`` (true),
    ``return_receiver`` / ``return_target_point`` / ``return_service`` (where returns go),
    ``retries`` (2), ``timeout`` (15 s), ``per_page`` (100)."""

    kind: ClassVar[str] = "inpost"
    batch_size: ClassVar[int] = 20
    # ShipX publishes no quota; a modest default, overridable per spoke.
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=10, per_seconds=1.0, concurrency=2)
    entities: ClassVar[tuple[str, ...]] = ("order", "return", "shipment", "touchpoint")

    def __init__(
        self,
        name: str,
        settings: Mapping[str, Any] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, settings)
        s = self.settings
        missing = [k for k in ("base_url", "organization_id", "token") if not s.get(k)]
        if missing:
            raise ConfigError(f"inpost spoke {name!r}: missing setting(s) {', '.join(missing)}")
        self.organization_id = str(s["organization_id"])
        token = secret(s, "token") or ""
        self.client = ShipXClient(
            str(s["base_url"]),
            token,
            timeout=float(s.get("timeout", 15.0)),
            retries=int(s.get("retries", 2)),
            on_call=self._count,
        )
        points_url = s.get("points_url")
        self.points_client = (
            ShipXClient(str(points_url), token, timeout=float(s.get("timeout", 15.0)), on_call=self._count)
            if points_url
            else self.client
        )
        self.clock = clock
        self.point_ttl = float(s.get("point_cache_seconds", 3600.0))
        self.missing_point_ttl = float(s.get("missing_point_cache_seconds", 60.0))
        self.default_template = str(s.get("default_parcel_template", "small"))
        self.touchpoint_statuses = frozenset(s.get("touchpoint_statuses", DEFAULT_TOUCHPOINT_STATUSES))
        self.with_tracking = bool(s.get("with_tracking", True))
        self.per_page = min(int(s.get("per_page", PER_PAGE)), PER_PAGE)
        self._points: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._points_lock = threading.Lock()

    def _count(self) -> None:
        self.calls += 1

    def close(self) -> None:
        self.client.close()
        if self.points_client is not self.client:
            self.points_client.close()

    # --- points ----------------------------------------------------------------------------------

    def point(self, name: str) -> dict[str, Any]:
        """The locker point ``name`` (GET /v1/points/{name}), cached; RecordRejected if it does not exist."""
        key = name.strip().upper()
        now = self.clock()
        with self._points_lock:
            cached = self._points.get(key)
        if cached is not None and cached[0] > now:
            found = cached[1]
        else:
            try:
                found = self.points_client.get_json(f"/v1/points/{key}", f"point {key}")
                expires = now + self.point_ttl
            except RecordRejected as exc:
                if exc.code != "resource_not_found":
                    raise
                found, expires = None, now + self.missing_point_ttl
            with self._points_lock:
                self._points[key] = (expires, found)
        if found is None:
            raise RecordRejected(f"point {key} does not exist", code="point_not_found")
        return found

    # --- shipments: lookups, label ---------------------------------------------------------------

    def _shipments_path(self) -> str:
        return f"/v1/organizations/{self.organization_id}/shipments"

    def find_by_reference(self, reference: str) -> dict[str, Any] | None:
        """The shipment created with ``reference`` (our canonical id), if there is one."""
        page = self.client.call("GET", self._shipments_path(), "shipment search", params={"reference": reference})
        items = page.json().get("items") or []
        exact = [i for i in items if i.get("reference") == reference]
        return min(exact, key=lambda i: int(i["id"])) if exact else None

    def get_shipment(self, shipment_id: str | int) -> dict[str, Any]:
        shipment: dict[str, Any] = self.client.get_json(f"/v1/shipments/{shipment_id}", f"shipment {shipment_id}")
        return shipment

    def tracking(self, tracking_number: str) -> dict[str, Any]:
        found: dict[str, Any] = self.client.get_json(f"/v1/tracking/{tracking_number}", f"tracking {tracking_number}")
        return found

    def label(self, shipment_id: str | int, *, type: str = "A6") -> bytes:
        """The shipment's label as PDF bytes (GET /v1/shipments/{id}/label?format=pdf&type=A6|normal)."""
        response = self.client.retrying(
            lambda: self.client.call(
                "GET",
                f"/v1/shipments/{shipment_id}/label",
                f"label of {shipment_id}",
                params={"format": "pdf", "type": type},
            )
        )
        return response.content

    # --- writes ----------------------------------------------------------------------------------

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        if entity not in ("order", "return"):
            raise ConfigError(f"inpost writes orders (as shipments) and returns, not {entity!r}")
        results: list[WriteResult] = []
        for req in batch:
            try:
                results.append(self._write_one(entity, req))
            except SynchubError as exc:
                results.append(WriteResult(error=exc))
        return results

    def _write_one(self, entity: str, req: WriteRequest) -> WriteResult:
        if req.op != "upsert":
            # ShipX has no delete; a bought label is cancelled by InPost's support, not by us
            return WriteResult(native_id=req.native_id)
        if req.native_id:
            # the shipment exists; ShipX does not change a shipment once its offer is bought
            return WriteResult(native_id=req.native_id)
        body = dict(req.payload)
        if entity == "order":
            if not body.get("service"):
                return WriteResult()  # not a parcel-locker order: nothing to ship through InPost
        else:
            body = self._return_body(body)
        point = (body.get("custom_attributes") or {}).get("target_point")
        if point:
            self.point(str(point))
        elif str(body.get("service", "")).startswith("inpost_locker"):
            raise RecordRejected("a parcel-locker shipment needs a target point; the order has none", code="required")
        body.setdefault("parcels", {"template": self.default_template})
        body["reference"] = req.canonical_id
        shipment = self._create_once(req.canonical_id, body)
        return WriteResult(native_id=str(shipment["id"]), updated_at=_parse_ts(shipment.get("updated_at")))

    def _return_body(self, body: dict[str, Any]) -> dict[str, Any]:
        receiver = self.settings.get("return_receiver")
        if not isinstance(receiver, Mapping):
            raise ConfigError("inpost: returns need the setting return_receiver (the merchant's name, email, phone)")
        out = {**body, "is_return": True, "receiver": dict(receiver)}
        out.setdefault("service", str(self.settings.get("return_service", "inpost_locker_standard")))
        target = self.settings.get("return_target_point")
        if target:
            out["custom_attributes"] = {**(out.get("custom_attributes") or {}), "target_point": str(target)}
        return out

    def _create_once(self, reference: str, body: dict[str, Any]) -> dict[str, Any]:
        """Look the reference up, create only if absent; the pair is retried together, so a create whose
        reply was lost is found on the next attempt instead of being made twice."""

        def attempt() -> dict[str, Any]:
            existing = self.find_by_reference(reference)
            if existing is not None:
                return existing
            created: dict[str, Any] = self.client.call(
                "POST", self._shipments_path(), f"create shipment {reference}", json_body=body
            ).json()
            return created

        return self.client.retrying(attempt)

    # --- reads -----------------------------------------------------------------------------------

    def _changed_since(self, cursor: _Cursor) -> list[dict[str, Any]]:
        """Shipments updated after the cursor, oldest first: newest-first pages walked back to it."""
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            params = {"sort_by": "updated_at", "sort_order": "desc", "page": page, "per_page": self.per_page}
            data = self.client.get_json(self._shipments_path(), "shipment list", params)
            items = data.get("items") or []
            reached = False
            for item in items:
                if cursor.seen(item):
                    reached = True
                    break
                found.append(item)
            if reached or not items or page * int(data.get("per_page") or self.per_page) >= int(data.get("count") or 0):
                break
            page += 1
        unique = {int(i["id"]): i for i in reversed(found)}  # a shipment updated mid-walk may show twice
        return sorted(unique.values(), key=lambda i: (_parse_ts(i["updated_at"]) or datetime.min, int(i["id"])))

    def _with_tracking(self, shipment: dict[str, Any]) -> dict[str, Any]:
        """The shipment as ShipX holds it, plus ``tracking_details`` (newest first, as the tracking endpoint
        answers) and the reference split by what it refers to (``is_return``: a return, else an order)."""
        out = dict(shipment)
        ref = out.get("reference")
        out["order_reference"] = None if out.get("is_return") else ref
        out["return_reference"] = ref if out.get("is_return") else None
        tn = out.get("tracking_number")
        if self.with_tracking and tn:
            out["tracking_details"] = self.tracking(str(tn)).get("tracking_details") or []
        return out

    def _touchpoints(self, shipment: dict[str, Any]) -> list[dict[str, Any]]:
        out = []
        for detail in shipment.get("tracking_details") or []:
            if detail.get("status") not in self.touchpoint_statuses:
                continue
            out.append(
                {
                    "id": f"{shipment['id']}:{detail['status']}:{detail.get('datetime')}",
                    "shipment_id": shipment["id"],
                    "tracking_number": shipment.get("tracking_number"),
                    "status": detail["status"],
                    "datetime": detail.get("datetime"),
                    "target_point": (shipment.get("custom_attributes") or {}).get("target_point"),
                    "external_customer_id": shipment.get("external_customer_id"),
                    "reference": shipment.get("reference"),
                }
            )
        return out

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        if entity not in ("shipment", "touchpoint"):
            return ChangePage([], cursor)
        previous = _Cursor.parse(cursor)
        changed = self._changed_since(previous)
        page, more = changed[:limit], len(changed) > limit
        records: list[NativeRecord] = []
        for item in page:
            full = self._with_tracking(item)
            if entity == "shipment":
                records.append(NativeRecord(str(full["id"]), full, updated_at=_parse_ts(full.get("updated_at"))))
            else:
                for tp in self._touchpoints(full):
                    records.append(NativeRecord(tp["id"], tp, updated_at=_parse_ts(tp["datetime"])))
        return ChangePage(records, _Cursor.after(page, previous) or cursor, more=more)

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        if entity != "shipment":
            raise NotImplementedError(f"inpost fetches shipments, not {entity}")
        out = []
        for nid in native_ids:
            try:
                full = self._with_tracking(self.get_shipment(nid))
            except RecordRejected as exc:
                if exc.code == "resource_not_found":
                    continue
                raise
            out.append(NativeRecord(str(full["id"]), full, updated_at=_parse_ts(full.get("updated_at"))))
        return out

    # --- webhooks --------------------------------------------------------------------------------

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        try:
            event = json.loads(body)
            kind = str(event["event"])
            org = str(event["organization_id"])
            payload = event["payload"]
            shipment_id = int(payload["shipment_id"])
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookRejected(f"inpost webhook: not a ShipX event ({type(exc).__name__})", status=400) from None
        if not hmac.compare_digest(org.encode(), self.organization_id.encode()):
            raise WebhookRejected("inpost webhook: event of another organization", status=403)
        if kind not in ("shipment_confirmed", "shipment_status_changed"):
            return []
        try:
            shipment = self._with_tracking(self.get_shipment(shipment_id))
        except RecordRejected as exc:
            raise WebhookRejected(f"inpost webhook: shipment {shipment_id} is not ours", status=404) from exc
        stamp = str(event.get("event_ts", ""))
        events = [
            InboundEvent(
                event_id=f"{kind}:{shipment_id}:{payload.get('status', '')}:{stamp}",
                entity="shipment",
                topic=kind,
                record=shipment,
            )
        ]
        for tp in self._touchpoints(shipment):
            events.append(InboundEvent(event_id=f"touchpoint:{tp['id']}", entity="touchpoint", topic=kind, record=tp))
        return events
