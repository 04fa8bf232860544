"""Contract tests: the InPost connector against the ShipX emulator, one call at a time."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from connectors.inpost import InPostConnector
from core.connector import WebhookRejected, WriteRequest, registry
from core.errors import ConfigError, RateLimited, RecordRejected, TransientError
from sandbox.inpost import ShipXEmulator

TOKEN = "shipx-secret-token-123"


@pytest.fixture
def shipx() -> Iterator[ShipXEmulator]:
    with ShipXEmulator(token=TOKEN, organization_id=7) as emulator:
        yield emulator


def connect(shipx: ShipXEmulator, **extra: Any) -> InPostConnector:
    settings = {"base_url": shipx.url, "organization_id": 7, "token": TOKEN, **extra}
    return InPostConnector("inpost", settings)


def locker_order(point: str = "KRA010", **receiver: Any) -> dict[str, Any]:
    """An order as mappings/inpost.yaml maps it out: the body of the create call."""
    return {
        "service": "inpost_locker_standard",
        "custom_attributes": {"target_point": point},
        "receiver": {"email": "anna.nowak@example.pl", "phone": "600100200", "first_name": "Anna", **receiver},
        "parcels": {"template": "small"},
        "comments": "Zamówienie #1042",
    }


def posts(shipx: ShipXEmulator) -> int:
    return sum(1 for method, path in shipx.state.requests if method == "POST")


def test_the_registry_finds_the_connector():
    assert registry.get("inpost") is InPostConnector


def test_missing_settings_are_a_config_error_naming_them():
    with pytest.raises(ConfigError, match="organization_id, token"):
        InPostConnector("inpost", {"base_url": "http://127.0.0.1:1"})


def test_a_locker_order_creates_one_shipment_with_the_canonical_id_as_reference(shipx):
    # Given a connector and a parcel-locker order
    conn = connect(shipx)
    cid = str(uuid.uuid4())
    # When it is written
    [result] = conn.write("order", [WriteRequest(cid, None, locker_order())])
    # Then ShipX holds one shipment to that locker, tied to the order by its reference
    assert result.ok, result.error
    shipment = shipx.shipment(result.native_id)
    assert shipment["reference"] == cid
    assert shipment["service"] == "inpost_locker_standard"
    assert shipment["custom_attributes"]["target_point"] == "KRA010"
    assert shipment["receiver"]["email"] == "anna.nowak@example.pl"
    assert shipment["receiver"]["phone"] == "600100200"
    assert shipment["parcels"][0]["template"] == "small"
    assert shipx.state.creates == 1
    assert result.updated_at is not None


def test_parcel_dimensions_instead_of_a_template_are_accepted(shipx):
    conn = connect(shipx)
    body = {
        **locker_order(),
        "parcels": {"dimensions": {"length": 80, "width": 360, "height": 640, "unit": "mm"}, "weight": {"amount": 2}},
    }
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, body)])
    assert result.ok, result.error
    assert shipx.shipment(result.native_id)["parcels"][0]["template"] is None


def test_an_order_that_is_not_for_a_locker_is_acknowledged_and_ships_nothing(shipx):
    conn = connect(shipx)
    body = {**locker_order(), "service": None}
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, body)])
    assert result.ok and result.native_id is None
    assert shipx.state.creates == 0 and shipx.state.requests == []


def test_a_create_whose_reply_was_lost_is_found_by_reference_not_made_twice(shipx):
    # Given ShipX creates the shipment but the reply is lost (a 502 from a proxy)
    conn = connect(shipx)
    cid = str(uuid.uuid4())
    shipx.lose_create_replies(1)
    # When the connector writes the order (its in-call retry runs lookup + create again)
    [result] = conn.write("order", [WriteRequest(cid, None, locker_order())])
    # Then the retry found the first shipment: one create, one shipment for the reference
    assert result.ok, result.error
    assert shipx.state.creates == 1
    assert [s["id"] for s in shipx.shipments()] == [int(result.native_id)]


def test_a_retried_write_after_a_transient_failure_does_not_create_a_second_shipment(shipx):
    # Given no in-call retries: the lost reply surfaces as a transient error to the outbox
    conn = connect(shipx, retries=0)
    cid = str(uuid.uuid4())
    shipx.lose_create_replies(1)
    [first] = conn.write("order", [WriteRequest(cid, None, locker_order())])
    assert isinstance(first.error, TransientError)
    # When the outbox retries the same write later
    [second] = conn.write("order", [WriteRequest(cid, None, locker_order())])
    # Then it answers the shipment made the first time
    assert second.ok and shipx.state.creates == 1
    assert int(second.native_id) == shipx.shipments()[0]["id"]


def test_a_known_shipment_is_not_created_again(shipx):
    conn = connect(shipx)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), "1183459921", locker_order())])
    assert result.native_id == "1183459921"
    assert shipx.state.requests == []


def test_an_unknown_point_is_a_clear_rejection_and_nothing_is_created(shipx):
    conn = connect(shipx)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order("kra99x"))])
    assert isinstance(result.error, RecordRejected)
    assert str(result.error) == "point KRA99X does not exist"
    assert result.error.code == "point_not_found"
    assert shipx.state.creates == 0


def test_points_are_cached_until_they_expire(shipx):
    # Given a connector with a controllable clock
    now = [1000.0]
    conn = InPostConnector(
        "inpost",
        {"base_url": shipx.url, "organization_id": 7, "token": TOKEN, "point_cache_seconds": 60},
        clock=lambda: now[0],
    )
    point_reads = lambda: shipx.state.requests.count(("GET", "/v1/points/KRA010"))  # noqa: E731
    # When the same point is checked twice, then after the cache expired
    assert conn.point("KRA010")["name"] == "KRA010"
    conn.point("kra010 ")
    assert point_reads() == 1
    now[0] += 61
    conn.point("KRA010")
    # Then ShipX was asked once per expiry
    assert point_reads() == 2


def test_an_unknown_point_is_remembered_briefly_then_asked_again(shipx):
    now = [0.0]
    conn = InPostConnector(
        "inpost", {"base_url": shipx.url, "organization_id": 7, "token": TOKEN}, clock=lambda: now[0]
    )
    with pytest.raises(RecordRejected):
        conn.point("KRA99X")
    shipx.add_point("KRA99X")
    with pytest.raises(RecordRejected):
        conn.point("KRA99X")  # still cached as missing
    now[0] += 61
    assert conn.point("KRA99X")["name"] == "KRA99X"


def test_a_validation_error_names_the_field_and_the_rest_of_the_batch_goes_on(shipx):
    conn = connect(shipx)
    bad = locker_order(phone="60012")  # ShipX wants nine digits
    good = locker_order()
    results = conn.write(
        "order", [WriteRequest(str(uuid.uuid4()), None, bad), WriteRequest(str(uuid.uuid4()), None, good)]
    )
    assert isinstance(results[0].error, RecordRejected)
    assert results[0].error.code == "validation_failed"
    assert '"phone": ["invalid"]' in str(results[0].error)
    assert results[1].ok and shipx.state.creates == 1


def test_a_label_is_pdf_bytes(shipx):
    conn = connect(shipx)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
    pdf = conn.label(result.native_id)
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    with pytest.raises(RecordRejected) as err:
        conn.label("999")
    assert err.value.code == "resource_not_found"


def test_tracking_answers_the_history_newest_first(shipx):
    conn = connect(shipx)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
    shipment = shipx.advance(result.native_id, "ready_to_pickup")
    tracking = conn.tracking(shipment["tracking_number"])
    assert [d["status"] for d in tracking["tracking_details"]] == ["ready_to_pickup", "confirmed", "created"]


def test_polling_returns_changes_oldest_first_once_across_pages(shipx):
    # Given five shipments and a connector reading two per page
    conn = connect(shipx, per_page=2)
    ids = [conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])[0].native_id for _ in range(5)]
    # When it polls from the beginning
    page = conn.read_changes("shipment", None)
    # Then it reads all five, oldest first, confirmed with their tracking history and order link
    assert [r.native_id for r in page.records] == ids
    first = page.records[0].data
    assert first["status"] == "confirmed" and first["tracking_details"][0]["status"] == "confirmed"
    assert first["order_reference"] == first["reference"] and first["return_reference"] is None
    # And a second poll reads nothing; a status change is read once
    assert conn.read_changes("shipment", page.cursor).records == []
    shipx.advance(ids[1], "ready_to_pickup")
    again = conn.read_changes("shipment", page.cursor)
    assert [(r.native_id, r.data["status"]) for r in again.records] == [(ids[1], "ready_to_pickup")]
    assert conn.read_changes("shipment", again.cursor).records == []


def test_polling_honours_the_limit_and_says_there_is_more(shipx):
    conn = connect(shipx)
    for _ in range(3):
        conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
    first = conn.read_changes("shipment", None, limit=2)
    assert len(first.records) == 2 and first.more
    rest = conn.read_changes("shipment", first.cursor, limit=2)
    assert len(rest.records) == 1 and not rest.more


def test_touchpoints_are_the_customer_facing_tracking_events(shipx):
    conn = connect(shipx)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
    shipx.advance(result.native_id, "out_for_delivery")
    shipx.advance(result.native_id, "ready_to_pickup")
    page = conn.read_changes("touchpoint", None)
    assert [r.data["status"] for r in page.records] == ["ready_to_pickup"]
    assert page.records[0].data["target_point"] == "KRA010"
    shipx.advance(result.native_id, "delivered")
    later = conn.read_changes("touchpoint", page.cursor)
    assert sorted(r.data["status"] for r in later.records) == ["delivered", "ready_to_pickup"]


def test_fetch_reads_shipments_by_id_and_skips_unknown_ones(shipx):
    conn = connect(shipx)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
    found = conn.fetch("shipment", [result.native_id, "999"])
    assert [r.native_id for r in found] == [result.native_id]


def test_a_return_is_a_return_shipment_to_the_merchant(shipx):
    conn = connect(
        shipx,
        return_receiver={"company_name": "Herbaciarnia sp. z o.o.", "email": "zwroty@example.pl", "phone": "501002003"},
        return_target_point="KRA01M",
    )
    rid = str(uuid.uuid4())
    [result] = conn.write("return", [WriteRequest(rid, None, {"comments": "wrong size"})])
    assert result.ok, result.error
    shipment = shipx.shipment(result.native_id)
    assert shipment["is_return"] is True and shipment["reference"] == rid
    assert shipment["receiver"]["email"] == "zwroty@example.pl"
    assert shipment["custom_attributes"]["target_point"] == "KRA01M"
    [read] = conn.read_changes("shipment", None).records
    assert read.data["return_reference"] == rid and read.data["order_reference"] is None


def test_a_return_without_a_merchant_address_is_a_config_error(shipx):
    conn = connect(shipx)
    [result] = conn.write("return", [WriteRequest(str(uuid.uuid4()), None, {})])
    assert isinstance(result.error, ConfigError)


def test_throttling_surfaces_with_retry_after_when_longer_than_an_inline_wait(shipx):
    conn = connect(shipx)
    shipx.throttle(1, retry_after=30)
    with pytest.raises(RateLimited) as err:
        conn.read_changes("shipment", None)
    assert err.value.retry_after == 30
    assert len(shipx.state.requests) == 1  # not retried inside the call


def test_short_throttling_and_5xx_are_retried_inside_the_call(shipx):
    conn = connect(shipx)
    shipx.throttle(1, retry_after=0.05)
    assert conn.read_changes("shipment", None).records == []
    shipx.fail_next(2, status=503)
    assert conn.read_changes("shipment", None).records == []
    assert conn.calls == 5  # 2 + 3 attempts


def test_persistent_5xx_is_a_transient_error_per_record(shipx):
    conn = connect(shipx, retries=1)
    shipx.fail_next(10, status=500)
    [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
    assert isinstance(result.error, TransientError)
    assert "internal_server_error" in str(result.error)


def test_a_wrong_token_is_a_config_error_that_does_not_leak_the_token(shipx):
    conn = InPostConnector("inpost", {"base_url": shipx.url, "organization_id": 7, "token": "wrong-token-xyz"})
    with pytest.raises(ConfigError) as err:
        conn.read_changes("shipment", None)
    assert "token_invalid" in str(err.value) and "wrong-token-xyz" not in str(err.value)


class _Receiver:
    """A webhook endpoint on 127.0.0.1 that keeps what ShipX posts."""

    def __init__(self) -> None:
        self.bodies: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.bodies.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/inpost"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_webhooks_are_verified_by_reading_the_shipment_back():
    receiver = _Receiver()
    try:
        with ShipXEmulator(token=TOKEN, organization_id=7, webhook_url=receiver.url) as shipx:
            # Given a shipment, and ShipX posting its status change to our endpoint
            conn = connect(shipx)
            [result] = conn.write("order", [WriteRequest(str(uuid.uuid4()), None, locker_order())])
            shipx.advance(result.native_id, "ready_to_pickup")
            headers, body = receiver.bodies[-1]
            assert json.loads(body)["event"] == "shipment_status_changed"
            # When the connector parses it
            events = conn.parse_webhook(headers, body)
            # Then it answers the shipment as ShipX holds it now, and the touchpoint it makes
            assert [e.entity for e in events] == ["shipment", "touchpoint"]
            assert events[0].record["status"] == "ready_to_pickup"
            assert events[0].record["tracking_details"][0]["status"] == "ready_to_pickup"
            assert events[0].event_id != conn.parse_webhook(*receiver.bodies[0])[0].event_id
            # And an event of another organization, of an unknown shipment, or garbage is refused
            other = json.loads(body) | {"organization_id": 8}
            with pytest.raises(WebhookRejected) as err:
                conn.parse_webhook({}, json.dumps(other).encode())
            assert err.value.status == 403
            forged = json.loads(body) | {"payload": {"shipment_id": 4242, "status": "delivered"}}
            with pytest.raises(WebhookRejected) as err:
                conn.parse_webhook({}, json.dumps(forged).encode())
            assert err.value.status == 404
            with pytest.raises(WebhookRejected) as err:
                conn.parse_webhook({}, b"not json")
            assert err.value.status == 400
    finally:
        receiver.stop()
