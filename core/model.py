"""The canonical model: the one shape every system's records are translated into and out of.

Why a canonical model at all: with N systems, N mappings to one shape instead of N² pairwise ones,
and a single place (the golden record) where identity, ownership and history are decided.

Design rules, each with a reason:

* Every field is optional with an empty default. Systems rarely know everything about a record;
  a mapping produces a *partial* canonical record and the sync core merges it field by field.
* Keyed collections are dicts, not lists (``addresses["shipping"]``, ``consents["email"]``), so a
  3-way merge can compare one address or one consent without guessing which list item is which.
* Money is ``Decimal`` with an ISO 4217 currency beside it; never float.
* Timestamps are timezone-aware UTC; phones are E.164; country codes ISO 3166-1 alpha-2.
* Canonical ids are UUIDs minted by the hub.

``ENTITIES`` names each entity as mapping files spell it (``customer``, ``order``, ...).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(value: datetime) -> datetime:
    """Reject naive datetimes: a timestamp without a zone is a bug waiting for daylight saving."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("timestamp must carry a time zone (canonical timestamps are UTC)")
    return value


def _e164(value: str) -> str:
    if not (value.startswith("+") and value[1:].isdigit() and 8 <= len(value) <= 16):
        raise ValueError(f"phone {value!r} is not E.164 (+ and 7 to 15 digits)")
    return value


def _iso2(value: str) -> str:
    if not (len(value) == 2 and value.isalpha() and value.isupper()):
        raise ValueError(f"country {value!r} is not an ISO 3166-1 alpha-2 code")
    return value


def _currency(value: str) -> str:
    if not (len(value) == 3 and value.isalpha() and value.isupper()):
        raise ValueError(f"currency {value!r} is not an ISO 4217 code")
    return value


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
E164 = Annotated[str, AfterValidator(_e164)]
CountryCode = Annotated[str, AfterValidator(_iso2)]
CurrencyCode = Annotated[str, AfterValidator(_currency)]


class Canonical(BaseModel):
    """Base of every canonical model: strict about unknown keys so a mapping typo cannot hide."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Channel(StrEnum):
    """Where a customer met the retailer; used in touchpoints, orders and ``Customer.channels``."""

    web = "web"
    store = "store"
    marketplace = "marketplace"
    phone = "phone"
    email = "email"
    crm = "crm"
    locker = "locker"
    app = "app"


class Address(Canonical):
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    postal_code: str | None = None
    region: str | None = None
    country: CountryCode | None = None
    company: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: E164 | None = None


class Consent(Canonical):
    """One marketing consent. ``granted=False`` is a withdrawal and wins over older opt-ins."""

    granted: bool | None = None
    at: UtcDatetime | None = None
    source: str | None = None


class Customer(Canonical):
    id: uuid.UUID | None = None
    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    emails: list[str] = Field(default_factory=list, description="normalised; the first is primary")
    phones: list[E164] = Field(default_factory=list, description="E.164; the first is primary")
    addresses: dict[str, Address] = Field(default_factory=dict, description="keyed by role: default, billing, shipping")
    loyalty_ids: list[str] = Field(default_factory=list)
    consents: dict[str, Consent] = Field(
        default_factory=dict, description="keyed by purpose: email, sms, phone, profiling"
    )
    channels: list[Channel] = Field(default_factory=list)
    language: str | None = None
    birth_date: date | None = None
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class Product(Canonical):
    id: uuid.UUID | None = None
    sku: str | None = None
    name: str | None = None
    description: str | None = None
    ean: str | None = None
    price: Decimal | None = None
    currency: CurrencyCode | None = None
    tax_rate: Decimal | None = None
    active: bool | None = None
    weight_kg: Decimal | None = None
    updated_at: UtcDatetime | None = None


class StockLevel(Canonical):
    id: uuid.UUID | None = None
    sku: str | None = None
    product_id: uuid.UUID | None = None
    location: str | None = None
    available: Decimal | None = None
    on_hand: Decimal | None = None
    updated_at: UtcDatetime | None = None


class OrderStatus(StrEnum):
    pending = "pending"
    confirmed = "confirmed"
    processing = "processing"
    shipped = "shipped"
    ready_for_pickup = "ready_for_pickup"
    completed = "completed"
    cancelled = "cancelled"
    returned = "returned"


class PaymentStatus(StrEnum):
    pending = "pending"
    authorized = "authorized"
    paid = "paid"
    partially_paid = "partially_paid"
    refunded = "refunded"
    partially_refunded = "partially_refunded"
    voided = "voided"
    failed = "failed"


class DeliveryMethod(StrEnum):
    courier = "courier"
    parcel_locker = "parcel_locker"
    click_and_collect = "click_and_collect"
    in_store = "in_store"
    digital = "digital"


class OrderLine(Canonical):
    sku: str | None = None
    product_id: uuid.UUID | None = None
    name: str | None = None
    quantity: Decimal | None = None
    unit_price: Decimal | None = None
    discount: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None


class Payment(Canonical):
    method: str | None = None
    amount: Decimal | None = None
    status: PaymentStatus | None = None
    reference: str | None = None
    at: UtcDatetime | None = None


class Delivery(Canonical):
    method: DeliveryMethod | None = None
    carrier: str | None = None
    locker_point_id: str | None = Field(default=None, description="parcel locker point, e.g. KRA010")
    store_id: str | None = Field(default=None, description="click&collect store")
    address: Address | None = None
    price: Decimal | None = None


class Order(Canonical):
    id: uuid.UUID | None = None
    number: str | None = None
    customer_id: uuid.UUID | None = None
    email: str | None = None
    phone: E164 | None = None
    channel: Channel | None = None
    source_system: str | None = None
    status: OrderStatus | None = None
    payment_status: PaymentStatus | None = None
    currency: CurrencyCode | None = None
    subtotal: Decimal | None = None
    shipping_total: Decimal | None = None
    tax_total: Decimal | None = None
    discount_total: Decimal | None = None
    total: Decimal | None = None
    lines: list[OrderLine] = Field(default_factory=list)
    payments: list[Payment] = Field(default_factory=list)
    delivery: Delivery | None = None
    billing_address: Address | None = None
    tags: list[str] = Field(default_factory=list)
    note: str | None = None
    placed_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class ShipmentStatus(StrEnum):
    created = "created"
    label_ready = "label_ready"
    dispatched = "dispatched"
    in_transit = "in_transit"
    out_for_delivery = "out_for_delivery"
    ready_for_pickup = "ready_for_pickup"
    delivered = "delivered"
    not_picked_up = "not_picked_up"
    returned_to_sender = "returned_to_sender"
    cancelled = "cancelled"
    exception = "exception"


class ShipmentEvent(Canonical):
    status: ShipmentStatus | None = None
    native_status: str | None = None
    at: UtcDatetime | None = None


class Shipment(Canonical):
    id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    return_id: uuid.UUID | None = None
    carrier: str | None = None
    service: str | None = None
    locker_point_id: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    status: ShipmentStatus | None = None
    status_history: list[ShipmentEvent] = Field(default_factory=list)
    receiver_email: str | None = None
    receiver_phone: E164 | None = None
    reference: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class ReturnStatus(StrEnum):
    requested = "requested"
    approved = "approved"
    in_transit = "in_transit"
    received = "received"
    refunded = "refunded"
    rejected = "rejected"


class ReturnLine(Canonical):
    sku: str | None = None
    quantity: Decimal | None = None
    reason: str | None = None


class Return(Canonical):
    id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    channel: Channel | None = None
    status: ReturnStatus | None = None
    reason: str | None = None
    lines: list[ReturnLine] = Field(default_factory=list)
    refund_amount: Decimal | None = None
    currency: CurrencyCode | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class ComplaintStatus(StrEnum):
    new = "new"
    in_progress = "in_progress"
    waiting = "waiting"
    approved = "approved"
    rejected = "rejected"
    resolved = "resolved"
    closed = "closed"


class Complaint(Canonical):
    id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    channel: Channel | None = None
    subject: str | None = None
    description: str | None = None
    status: ComplaintStatus | None = None
    priority: str | None = None
    resolution: str | None = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class Touchpoint(Canonical):
    """One moment of the customer's journey on one channel (a visit, a pickup, a call)."""

    id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None
    channel: Channel | None = None
    kind: str | None = Field(default=None, description="order, pickup, return, complaint, visit, ...")
    at: UtcDatetime | None = None
    system: str | None = None
    reference: str | None = None
    summary: str | None = None


ENTITIES: dict[str, type[Canonical]] = {
    "customer": Customer,
    "product": Product,
    "stock_level": StockLevel,
    "order": Order,
    "shipment": Shipment,
    "return": Return,
    "complaint": Complaint,
    "touchpoint": Touchpoint,
}
"""Canonical entity name (as mapping files and the store spell it) → its model."""


def new_canonical_id() -> uuid.UUID:
    """Mint a canonical id. Random (v4): ids must not leak order or time across systems."""
    return uuid.uuid4()
