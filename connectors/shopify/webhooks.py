"""Shopify webhooks: verify the HMAC, then turn the REST-shaped payload into the GraphQL shape.

Verification: ``X-Shopify-Hmac-Sha256`` is the base64 HMAC-SHA256 of the raw body with the app's
client secret (our ``webhook_secret``), compared in constant time.
https://shopify.dev/docs/apps/build/webhooks/subscribe/https#step-5-verify-the-webhook

Why convert rather than fetch the node by ``admin_graphql_api_id``: the endpoint must answer within
five seconds and land the event in the inbox before acknowledging it; a GraphQL call there would
spend cost points on every delivery (twice for each duplicate), fail whenever the bucket is empty,
and make acceptance depend on Shopify being reachable. The payload already holds the record as it
was at the event; its ``updated_at`` lets the pipeline drop an older event delivered after a newer
one. Fields the REST payload lacks (e.g. the loyalty metafield when the subscription was made
without ``metafieldNamespaces``) are left out, not set to null, so they never erase a value.
https://shopify.dev/docs/api/webhooks?reference=graphql (payload examples per topic)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

from connectors.shopify.cursor import stamp

# topic → entity the pipeline knows it as
TOPICS: dict[str, tuple[str, str]] = {
    "customers/create": ("customer", "upsert"),
    "customers/update": ("customer", "upsert"),
    "customers/delete": ("customer", "delete"),
    "customers/redact": ("customer", "erase"),
    "customers_email_marketing_consent/update": ("customer", "upsert"),
    "orders/create": ("order", "upsert"),
    "orders/updated": ("order", "upsert"),
    "orders/fulfilled": ("order", "upsert"),
    "orders/delete": ("order", "delete"),
    "products/create": ("product", "upsert"),
    "products/update": ("product", "upsert"),
    "products/delete": ("product", "delete"),
    "inventory_levels/update": ("stock_level", "upsert"),
}


def signature(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    if not header or not secret:
        return False
    return hmac.compare_digest(signature(secret, body).encode(), header.strip().encode())


def header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for k, v in headers.items():
        if k.lower() == wanted:
            return v
    return None


def _gid(kind: str, payload: Mapping[str, Any]) -> str | None:
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str):
        return gid
    raw = payload.get("id")
    return None if raw is None else f"gid://shopify/{kind}/{raw}"


def _put(out: dict[str, Any], key: str, payload: Mapping[str, Any], rest_key: str, convert: Any = None) -> None:
    if rest_key in payload:
        value = payload[rest_key]
        out[key] = convert(value) if convert is not None and value is not None else value


def _tags(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v) for v in value]
    return [t.strip() for t in str(value).split(",") if t.strip()]


def _upper(value: Any) -> str:
    return str(value).upper()


def _time(value: Any) -> str:
    return stamp(str(value))


def _address(a: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if a is None:
        return None
    out: dict[str, Any] = {}
    for key, rest in (
        ("firstName", "first_name"),
        ("lastName", "last_name"),
        ("company", "company"),
        ("address1", "address1"),
        ("address2", "address2"),
        ("zip", "zip"),
        ("city", "city"),
        ("countryCodeV2", "country_code"),
        ("phone", "phone"),
    ):
        _put(out, key, a, rest)
    if "id" in a:
        out["id"] = f"gid://shopify/MailingAddress/{a['id']}"
    return out


def _money(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        return None
    shop = value.get("shop_money") or {}
    return {"shopMoney": {"amount": str(shop.get("amount")), "currencyCode": shop.get("currency_code")}}


def _metafields(out: dict[str, Any], payload: Mapping[str, Any]) -> None:
    for mf in payload.get("metafields") or []:
        if mf.get("namespace") == "loyalty" and mf.get("key") == "id":
            out["loyaltyId"] = {"value": mf.get("value")}
        if mf.get("namespace") == "synchub" and mf.get("key") == "id":
            out["synchubId"] = {"value": mf.get("value")}


def customer(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _gid("Customer", p)}
    _put(out, "firstName", p, "first_name")
    _put(out, "lastName", p, "last_name")
    _put(out, "note", p, "note")
    _put(out, "locale", p, "locale")
    _put(out, "tags", p, "tags", _tags)
    _put(out, "createdAt", p, "created_at", _time)
    _put(out, "updatedAt", p, "updated_at", _time)
    if "email" in p:
        email: dict[str, Any] | None = None
        if p.get("email"):
            email = {"emailAddress": p["email"]}
            consent = p.get("email_marketing_consent")
            if isinstance(consent, Mapping):
                _put(email, "marketingState", consent, "state", _upper)
                _put(email, "marketingOptInLevel", consent, "opt_in_level", _upper)
                _put(email, "marketingUpdatedAt", consent, "consent_updated_at", _time)
        out["defaultEmailAddress"] = email
    if "phone" in p:
        phone: dict[str, Any] | None = None
        if p.get("phone"):
            phone = {"phoneNumber": p["phone"]}
            sms = p.get("sms_marketing_consent")
            if isinstance(sms, Mapping):
                state: dict[str, Any] = {}
                _put(state, "state", sms, "state", _upper)
                _put(state, "updatedAt", sms, "consent_updated_at", _time)
                phone["smsMarketingConsent"] = state
        out["defaultPhoneNumber"] = phone
    if "default_address" in p:
        out["defaultAddress"] = _address(p["default_address"])
    _metafields(out, p)
    return out


_FULFILMENT = {
    None: "UNFULFILLED",
    "fulfilled": "FULFILLED",
    "partial": "PARTIALLY_FULFILLED",
    "restocked": "RESTOCKED",
}


def order(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _gid("Order", p)}
    for key, rest in (("name", "name"), ("email", "email"), ("phone", "phone"), ("sourceName", "source_name")):
        _put(out, key, p, rest)
    _put(out, "note", p, "note")
    _put(out, "tags", p, "tags", _tags)
    _put(out, "currencyCode", p, "currency")
    _put(out, "processedAt", p, "processed_at", _time)
    _put(out, "updatedAt", p, "updated_at", _time)
    if "fulfillment_status" in p:
        out["displayFulfillmentStatus"] = _FULFILMENT.get(p["fulfillment_status"], str(p["fulfillment_status"]).upper())
    _put(out, "displayFinancialStatus", p, "financial_status", _upper)
    if "customer" in p:
        c = p["customer"]
        out["customer"] = {"id": _gid("Customer", c)} if isinstance(c, Mapping) else None
    for key, rest in (
        ("subtotalPriceSet", "subtotal_price_set"),
        ("totalShippingPriceSet", "total_shipping_price_set"),
        ("totalTaxSet", "total_tax_set"),
        ("totalDiscountsSet", "total_discounts_set"),
        ("totalPriceSet", "total_price_set"),
    ):
        _put(out, key, p, rest, _money)
    if "line_items" in p:
        out["lineItems"] = {"nodes": [_line(li) for li in p["line_items"]]}
    if "shipping_lines" in p:
        lines = p["shipping_lines"] or []
        first = lines[0] if lines else None
        out["shippingLine"] = (
            None
            if first is None
            else {
                "title": first.get("title"),
                "code": first.get("code"),
                "source": first.get("source"),
                "originalPriceSet": _money(first.get("price_set")),
            }
        )
    if "note_attributes" in p:
        out["customAttributes"] = [{"key": a.get("name"), "value": a.get("value")} for a in p["note_attributes"]]
    if "shipping_address" in p:
        out["shippingAddress"] = _address(p["shipping_address"])
    if "billing_address" in p:
        out["billingAddress"] = _address(p["billing_address"])
    if "fulfillments" in p:
        out["fulfillments"] = [
            {
                "id": _gid("Fulfillment", f),
                "status": _upper(f.get("status")),
                "trackingInfo": [
                    {"number": n, "company": f.get("tracking_company"), "url": u}
                    for n, u in zip(f.get("tracking_numbers") or [], f.get("tracking_urls") or [None], strict=False)
                ],
            }
            for f in p["fulfillments"]
        ]
    return out


def _line(li: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _gid("LineItem", li)}
    for key in ("sku", "name", "quantity"):
        _put(out, key, li, key)
    _put(out, "originalUnitPriceSet", li, "price_set", _money)
    _put(out, "totalDiscountSet", li, "total_discount_set", _money)
    return out


def inventory_level(p: Mapping[str, Any]) -> dict[str, Any]:
    """inventory_levels/update carries ids and ``available`` only: the record says what it knows.

    The location name and SKU are not in the payload; the connector fills them from its caches.
    """
    item, location = p.get("inventory_item_id"), p.get("location_id")
    out: dict[str, Any] = {
        "id": f"gid://shopify/InventoryLevel/{location}?inventory_item_id={item}",
        "item": {"id": f"gid://shopify/InventoryItem/{item}"},
        "location": {"id": f"gid://shopify/Location/{location}"},
    }
    _put(out, "updatedAt", p, "updated_at", _time)
    if "available" in p:
        out["quantities"] = [{"name": "available", "quantity": p["available"]}]
    return out


def product(p: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"id": _gid("Product", p)}
    for key in ("title", "handle"):
        _put(out, key, p, key)
    _put(out, "status", p, "status", _upper)
    _put(out, "updatedAt", p, "updated_at", _time)
    if "variants" in p:
        out["variants"] = {
            "nodes": [
                {
                    "id": _gid("ProductVariant", v),
                    "sku": v.get("sku"),
                    "title": v.get("title"),
                    "price": v.get("price"),
                    "inventoryItem": {"id": f"gid://shopify/InventoryItem/{v.get('inventory_item_id')}"},
                }
                for v in p["variants"]
            ]
        }
    return out


CONVERT = {"customer": customer, "order": order, "stock_level": inventory_level, "product": product}
