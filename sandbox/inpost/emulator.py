"""An emulator of InPost's ShipX API (Poland) on 127.0.0.1, for tests, benchmarks and the demo.

There is no machine-readable ShipX specification; every shape here follows InPost's documentation
pages, cited where each behaviour is emulated:

* general rules, Bearer token, error body —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/28639247 ([1.23.0] API General Information)
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/28639229 (HTTP status codes, error object:
  ``{"status", "error", "message", "details"}``, ``validation_failed`` details keyed by attribute)
* creating a shipment (service, receiver, parcels, custom_attributes.target_point, reference) —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/11731061
* the shipment resource — https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153485/Shipment
* form validation (target_point required for locker services, parcel template or dimensions) —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153492/Form+validation
* shipment search, filters and sorting (``id``, ``tracking_number``, ``status``, ``service``, ``sort_by``,
  ``sort_order``) and the paginated list (``href``, ``count``, ``page``, ``per_page``, ``items``) —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153512/Shipment+search+and+sorting
* tracking (``tracking_details`` newest first: status, origin_status, agency, datetime) —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/28639244
* points (``GET /v1/points/{name}``, name like KRA010) —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153493
* statuses — https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153478/Statuses
* webhooks (``shipment_confirmed``, ``shipment_status_changed``; unsigned, sent from 91.216.25.0/24) —
  https://dokumentacja-inpost.atlassian.net/wiki/spaces/PL/pages/18153494/Webhooks

What is *not* documented and is the emulator's own choice, said here so nobody mistakes it for
ShipX: the ``reference`` search filter's exact-match semantics (the issue asks for it; the search page
lists the shipment's attributes as filters), the label body (a small valid PDF), and the
``is_return`` create flag for return shipments (``is_return`` is a documented shipment attribute).

Test controls: ``add_point``, ``advance(shipment_id, status)`` (moves a parcel on, records tracking,
fires the webhook), and fault knobs — ``latency``, ``fail_next(n, status)`` (5xx before doing
anything), ``throttle(n, retry_after)`` (429 with ``Retry-After``), ``lose_create_replies(n)`` (the
shipment is created, then the reply is a 502: the classic duplicate-create trap).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

WARSAW = timezone(timedelta(hours=1))  # ShipX answers in Polish local time, offset included

LOCKER_SERVICES = {"inpost_locker_standard", "inpost_locker_allegro", "inpost_locker_pass_thru"}
SERVICES = LOCKER_SERVICES | {"inpost_courier_standard", "inpost_courier_express_1000", "inpost_courier_c2c"}
TEMPLATES = {"small", "medium", "large"}

# Statuses from GET /v1/statuses (page cited above), with the Polish titles the tracking shows.
STATUS_TITLES = {
    "created": "Przesyłka utworzona",
    "confirmed": "Przygotowana przez Nadawcę",
    "dispatched_by_sender": "Paczka nadana w automacie Paczkomat",
    "collected_from_sender": "Odebrana od klienta",
    "taken_by_courier": "Odebrana od Nadawcy",
    "adopted_at_source_branch": "Przyjęta w oddziale InPost",
    "sent_from_source_branch": "W trasie",
    "adopted_at_sorting_center": "Przyjęta w Sortowni",
    "sent_from_sorting_center": "Wysłana z Sortowni",
    "adopted_at_target_branch": "Przyjęta w Oddziale Docelowym",
    "out_for_delivery": "Przekazano do doręczenia",
    "ready_to_pickup": "Umieszczona w automacie Paczkomat (odbiorczym)",
    "pickup_reminder_sent": "Przypomnienie o czekającej paczce",
    "delivered": "Dostarczona",
    "pickup_time_expired": "Upłynął termin odbioru",
    "avizo": "Powrót do oddziału",
    "returned_to_sender": "Zwrot do nadawcy",
    "canceled": "Anulowano etykietę",
    "undelivered": "Przekazanie do magazynu przesyłek niedoręczalnych",
    "missing": "Przesyłka zagubiona",
}

_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 298 420]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON: what a client receives never aliases the emulator's state."""
    copied: dict[str, Any] = json.loads(json.dumps(value))
    return copied


def _ts(moment: datetime) -> str:
    """ShipX's timestamp style: local time with milliseconds and the offset (2026-11-20T14:02:11.452+01:00)."""
    return moment.astimezone(WARSAW).isoformat(timespec="milliseconds")


class ShipXError(Exception):
    def __init__(self, status: int, error: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.details = status, error, message, details or {}

    def body(self) -> dict[str, Any]:
        return {"status": self.status, "error": self.error, "message": self.message, "details": self.details}


@dataclass
class _Faults:
    fail_next: int = 0
    fail_status: int = 503
    throttle_left: int = 0
    retry_after: float = 1.0
    lose_create_replies: int = 0


@dataclass
class EmulatorState:
    shipments: dict[int, dict[str, Any]] = field(default_factory=dict)
    tracking: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # shipment id → details, oldest first
    points: dict[str, dict[str, Any]] = field(default_factory=dict)
    creates: int = 0  # shipments actually created (a retried create that duplicated would show here)
    requests: list[tuple[str, str]] = field(default_factory=list)  # (method, path) of every request
    webhooks_sent: list[dict[str, Any]] = field(default_factory=list)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1183459921))
    tn: itertools.count[int] = field(default_factory=lambda: itertools.count(520113014230722029585646))
    last_time: datetime = field(default_factory=lambda: datetime(2000, 1, 1, tzinfo=UTC))
    lock: threading.RLock = field(default_factory=threading.RLock)


class ShipXEmulator:
    """``with ShipXEmulator(token="t", organization_id=1) as shipx: shipx.url …`` — a threaded HTTP server."""

    def __init__(
        self,
        *,
        token: str = "shipx-test-token",  # noqa: S107 - the emulator's own test token
        organization_id: int = 1,
        latency: float = 0.0,
        webhook_url: str | None = None,
        points: tuple[str, ...] = ("KRA010", "KRA01M", "WAW22A", "POZ08A"),
    ) -> None:
        self.token = token
        self.organization_id = organization_id
        self.latency = latency
        self.webhook_url = webhook_url
        self.state = EmulatorState()
        self.faults = _Faults()
        for name in points:
            self.add_point(name)
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body, ctype, headers = emulator.handle(method, self.path, dict(self.headers.items()), raw)
                self._answer(status, body, ctype, headers)

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for the loop's next look: 0.5 s by default, paid by every test's teardown
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    # --- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> ShipXEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- test and demo controls ------------------------------------------------------------------

    def add_point(self, name: str, *, city: str = "Kraków", status: str = "Operating") -> None:
        """A parcel locker the points endpoint knows (shape of GET /v1/points/{name})."""
        with self.state.lock:
            self.state.points[name] = {
                "href": f"{self.url if hasattr(self, 'url') else ''}/v1/points/{name}",
                "name": name,
                "type": ["parcel_locker"],
                "status": status,
                "location": {"latitude": 50.06, "longitude": 19.94},
                "location_type": "Outdoor",
                "location_description": "przy sklepie",
                "opening_hours": "24/7",
                "address": {"line1": "ul. Karmelicka 32", "line2": f"31-128 {city}"},
                "address_details": {"city": city, "province": "małopolskie", "post_code": "31-128"},
                "functions": ["parcel_collect", "parcel_send"],
                "location_247": True,
            }

    def remove_point(self, name: str) -> None:
        with self.state.lock:
            self.state.points.pop(name, None)

    def fail_next(self, calls: int, status: int = 503) -> None:
        """Answer the next ``calls`` requests with ``status`` (a 5xx) before doing anything."""
        with self.state.lock:
            self.faults.fail_next, self.faults.fail_status = calls, status

    def throttle(self, calls: int, retry_after: float = 1.0) -> None:
        """Answer the next ``calls`` requests with 429 and ``Retry-After``."""
        with self.state.lock:
            self.faults.throttle_left, self.faults.retry_after = calls, retry_after

    def lose_create_replies(self, calls: int) -> None:
        """Create the next ``calls`` shipments, then answer 502 as if a proxy lost the reply."""
        with self.state.lock:
            self.faults.lose_create_replies = calls

    def shipment(self, shipment_id: int | str) -> dict[str, Any]:
        with self.state.lock:
            return _copy(self.state.shipments[int(shipment_id)])

    def shipments(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [json.loads(json.dumps(s)) for s in self.state.shipments.values()]

    def advance(self, shipment_id: int | str, status: str, *, agency: str | None = None) -> dict[str, Any]:
        """Move a parcel on to ``status`` (a ShipX status name); fires the webhook when one is set."""
        if status not in STATUS_TITLES:
            raise ValueError(f"unknown ShipX status {status!r}")
        with self.state.lock:
            s = self.state.shipments[int(shipment_id)]
            now = self._now()
            s["status"] = status
            s["updated_at"] = _ts(now)
            self.state.tracking[s["id"]].append(
                {"status": status, "origin_status": status.upper()[:3], "agency": agency, "datetime": _ts(now)}
            )
            event = {
                "event_ts": now.astimezone(WARSAW).strftime("%Y-%m-%d %H:%M:%S %z"),
                "event": "shipment_status_changed",
                "organization_id": self.organization_id,
                "payload": {"shipment_id": s["id"], "status": status, "tracking_number": s["tracking_number"]},
            }
            snapshot = _copy(s)
        self._deliver(event)
        return snapshot

    # --- the API ---------------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, str, dict[str, str]]:
        if self.latency:
            time.sleep(self.latency)
        parts = urlsplit(target)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.state.lock:
            self.state.requests.append((method, path))
            f = self.faults
            if f.throttle_left > 0:
                f.throttle_left -= 1
                err = ShipXError(429, "too_many_requests", "Too many requests")
                return self._json(429, err.body(), {"Retry-After": f"{f.retry_after:g}"})
            if f.fail_next > 0:
                f.fail_next -= 1
                err = ShipXError(f.fail_status, "internal_server_error", "Something went wrong")
                return self._json(f.fail_status, err.body())
        try:
            return self._route(method, path, query, headers, raw)
        except ShipXError as exc:
            return self._json(exc.status, exc.body())

    def _json(
        self, status: int, body: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, bytes, str, dict[str, str]]:
        return status, json.dumps(body).encode(), "application/json; charset=utf-8", headers or {}

    def _authorize(self, headers: dict[str, str]) -> None:
        # Bearer token on every ShipX call (General Information → Authorization, cited above)
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if given != f"Bearer {self.token}":
            raise ShipXError(401, "token_invalid", "Token is missing or invalid")

    def _route(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], raw: bytes
    ) -> tuple[int, bytes, str, dict[str, str]]:
        m = re.fullmatch(r"/v1/points/([A-Za-z0-9_-]+)", path)
        if m and method == "GET":
            with self.state.lock:
                point = self.state.points.get(m.group(1))
            if point is None:
                raise ShipXError(404, "resource_not_found", "Resource you are looking for are not found")
            return self._json(200, point)
        self._authorize(headers)
        m = re.fullmatch(r"/v1/organizations/(\d+)/shipments", path)
        if m:
            if int(m.group(1)) != self.organization_id:
                raise ShipXError(403, "forbidden", "You are not allowed to access this organization")
            if method == "POST":
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise ShipXError(400, "invalid_json", "Request body is not valid JSON") from None
                return self._create(body)
            return self._list(path, query)
        m = re.fullmatch(r"/v1/shipments/(\d+)", path)
        if m and method == "GET":
            return self._json(200, self._get(int(m.group(1))))
        m = re.fullmatch(r"/v1/shipments/(\d+)/label", path)
        if m and method == "GET":
            s = self._get(int(m.group(1)))
            if s["status"] in ("created", "offers_prepared", "offer_selected") or not s["tracking_number"]:
                raise ShipXError(400, "invalid_action", "Label is not available for the shipment in this status")
            if query.get("format", "pdf").lower() != "pdf":
                raise ShipXError(400, "validation_failed", "Invalid parameters", {"format": ["invalid"]})
            return 200, _PDF, "application/pdf", {"Content-Disposition": f'attachment; filename="{s["id"]}.pdf"'}
        m = re.fullmatch(r"/v1/tracking/(\d+)", path)
        if m and method == "GET":
            return self._json(200, self._tracking(m.group(1)))
        raise ShipXError(404, "resource_not_found", "Resource you are looking for are not found")

    def _now(self) -> datetime:
        """Wall-clock time, strictly increasing by at least 1 ms: two changes never share a timestamp."""
        now = datetime.now(UTC).replace(microsecond=datetime.now(UTC).microsecond // 1000 * 1000)
        last = self.state.last_time
        if now <= last:
            now = last + timedelta(milliseconds=1)
        self.state.last_time = now
        return now

    def _validate(self, body: dict[str, Any]) -> dict[str, Any]:
        details: dict[str, Any] = {}
        service = body.get("service")
        if service is None:
            details["service"] = ["required"]
        elif service not in SERVICES:
            details["service"] = ["invalid"]
        receiver = body.get("receiver")
        if not isinstance(receiver, dict):
            details["receiver"] = ["required"]
        else:
            rec: dict[str, list[str]] = {}
            if service in LOCKER_SERVICES:
                if not receiver.get("email"):
                    rec["email"] = ["required"]
                if not receiver.get("phone"):
                    rec["phone"] = ["required"]
            phone = receiver.get("phone")
            if phone and not re.fullmatch(r"\d{9}", str(phone)):
                rec["phone"] = ["invalid"]
            email = receiver.get("email")
            if email and not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", str(email)):
                rec["email"] = ["invalid"]
            if rec:
                details["receiver"] = [rec]
        attrs = body.get("custom_attributes") or {}
        if service in LOCKER_SERVICES:
            point = attrs.get("target_point")
            if not point:
                details["custom_attributes"] = [{"target_point": ["required"]}]
            elif point not in self.state.points:
                details["custom_attributes"] = [{"target_point": ["does_not_exist"]}]
        parcels = body.get("parcels")
        items = parcels if isinstance(parcels, list) else [parcels] if isinstance(parcels, dict) else []
        if not items:
            details["parcels"] = ["required"]
        for p in items:
            if p.get("template") is not None and p["template"] not in TEMPLATES:
                details["parcels"] = [{"template": ["invalid"]}]
            elif p.get("template") is None and not (p.get("dimensions") and p.get("weight")):
                details["parcels"] = [{"dimensions": ["required"], "weight": ["required"]}]
        return details

    def _create(self, body: dict[str, Any]) -> tuple[int, bytes, str, dict[str, str]]:
        with self.state.lock:
            details = self._validate(body)
            if details:
                raise ShipXError(
                    400,
                    "validation_failed",
                    "Data sent by POST or PUT request are not valid. Check details for more info",
                    details,
                )
            now = self._now()
            sid = next(self.state.ids)
            parcels = body["parcels"] if isinstance(body["parcels"], list) else [body["parcels"]]
            shipment = {
                "href": f"{self.url}/v1/shipments/{sid}",
                "id": sid,
                "status": "created",
                "tracking_number": None,
                "return_tracking_number": None,
                "service": body["service"],
                "reference": body.get("reference"),
                "is_return": bool(body.get("is_return", False)),
                "application_id": 1,
                "created_by_id": 1,
                "external_customer_id": body.get("external_customer_id"),
                "sending_method": (body.get("custom_attributes") or {}).get("sending_method"),
                "end_of_week_collection": False,
                "comments": body.get("comments"),
                "mpk": body.get("mpk"),
                "additional_services": body.get("additional_services") or [],
                "custom_attributes": {
                    "target_point": None,
                    "dropoff_point": None,
                    "sending_method": None,
                    **(body.get("custom_attributes") or {}),
                },
                "cod": body.get("cod"),
                "insurance": body.get("insurance"),
                "sender": body.get("sender"),
                "receiver": {
                    "first_name": None,
                    "last_name": None,
                    "company_name": None,
                    "email": None,
                    "phone": None,
                    "address": None,
                    **body["receiver"],
                },
                "selected_offer": None,
                "offers": [],
                "transactions": [],
                "parcels": [
                    {
                        "id": sid * 10 + i,
                        "identify_number": None,
                        "tracking_number": None,
                        "is_non_standard": bool(p.get("is_non_standard", False)),
                        "template": p.get("template"),
                        "dimensions": p.get("dimensions"),
                        "weight": p.get("weight"),
                    }
                    for i, p in enumerate(parcels)
                ],
                "created_at": _ts(now),
                "updated_at": _ts(now),
            }
            self.state.shipments[sid] = shipment
            self.state.creates += 1
            self.state.tracking[sid] = [
                {"status": "created", "origin_status": "NEW", "agency": None, "datetime": _ts(now)}
            ]
            reply = json.loads(json.dumps(shipment))
            # Simplified creation buys the offer asynchronously: a moment later the shipment is
            # `confirmed` and has its tracking number (the reply still shows `created`).
            confirmed_at = self._now()
            tn = str(next(self.state.tn))
            shipment.update(status="confirmed", tracking_number=tn, updated_at=_ts(confirmed_at))
            for p in shipment["parcels"]:
                p["tracking_number"] = tn
            self.state.tracking[sid].append(
                {"status": "confirmed", "origin_status": "PPN", "agency": None, "datetime": _ts(confirmed_at)}
            )
            lose = self.faults.lose_create_replies > 0
            if lose:
                self.faults.lose_create_replies -= 1
        self._deliver(
            {
                "event_ts": confirmed_at.astimezone(WARSAW).strftime("%Y-%m-%d %H:%M:%S %z"),
                "event": "shipment_confirmed",
                "organization_id": self.organization_id,
                "payload": {"shipment_id": sid, "tracking_number": tn},
            }
        )
        if lose:
            err = ShipXError(502, "bad_gateway", "Bad gateway")
            return self._json(502, err.body())
        return self._json(201, reply)

    def _get(self, sid: int) -> dict[str, Any]:
        with self.state.lock:
            s = self.state.shipments.get(sid)
            if s is None:
                raise ShipXError(404, "resource_not_found", "Resource you are looking for are not found")
            return _copy(s)

    def _list(self, path: str, query: dict[str, str]) -> tuple[int, bytes, str, dict[str, str]]:
        try:
            page = int(query.get("page", "1"))
            per_page = int(query.get("per_page", "30"))
        except ValueError:
            raise ShipXError(400, "invalid_parameter", "Parameter is not an integer") from None
        if page < 1 or not 1 <= per_page <= 100:
            raise ShipXError(400, "invalid_parameter", "page must be >= 1, per_page between 1 and 100")
        sort_by = query.get("sort_by", "created_at")
        if sort_by not in ("id", "status", "created_at", "updated_at", "tracking_number"):
            raise ShipXError(400, "invalid_parameter", f"sort_by {sort_by!r} is not supported")
        descending = query.get("sort_order", "desc") != "asc"
        filters: list[Callable[[dict[str, Any]], bool]] = []
        if "id" in query:
            ids = {int(i) for i in query["id"].split(",") if i}
            filters.append(lambda s: s["id"] in ids)
        for key in ("status", "service"):
            if key in query:
                wanted = set(query[key].split(","))
                filters.append(lambda s, k=key, w=wanted: s[k] in w)  # type: ignore[misc]
        if "tracking_number" in query:
            filters.append(lambda s: s["tracking_number"] == query["tracking_number"])
        if "reference" in query:
            filters.append(lambda s: s["reference"] == query["reference"])
        with self.state.lock:
            found = [s for s in self.state.shipments.values() if all(f(s) for f in filters)]
            found.sort(key=lambda s: (s[sort_by] or "", s["id"]) if sort_by != "id" else s["id"], reverse=descending)
            items = [json.loads(json.dumps(s)) for s in found[(page - 1) * per_page : page * per_page]]
        return self._json(
            200,
            {"href": f"{self.url}{path}", "count": len(found), "page": page, "per_page": per_page, "items": items},
        )

    def _tracking(self, tracking_number: str) -> dict[str, Any]:
        with self.state.lock:
            s = next((x for x in self.state.shipments.values() if x["tracking_number"] == tracking_number), None)
            if s is None:
                raise ShipXError(404, "resource_not_found", "Resource you are looking for are not found")
            details = list(reversed(self.state.tracking[s["id"]]))  # newest first, as documented
            return {
                "tracking_number": tracking_number,
                "service": s["service"],
                "type": s["service"],
                "status": s["status"],
                "custom_attributes": {
                    "size": "A",
                    "target_machine_id": s["custom_attributes"].get("target_point"),
                    "dropoff_machine_id": None,
                },
                "tracking_details": json.loads(json.dumps(details)),
                "expected_flow": [],
                "created_at": s["created_at"],
                "updated_at": s["updated_at"],
            }

    def _deliver(self, event: dict[str, Any]) -> None:
        """POST the event to the registered webhook URL; ShipX does not sign it (Webhooks page)."""
        with self.state.lock:
            self.state.webhooks_sent.append(event)
        if not self.webhook_url:
            return
        # a receiver that is down misses the event; polling is the safety net
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(self.webhook_url, json=event, timeout=5.0)
