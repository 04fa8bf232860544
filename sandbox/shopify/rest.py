"""The REST-shaped JSON Shopify puts in webhook bodies, made from the emulator's GraphQL-shaped
records. Shapes follow the payload examples of each topic:
https://shopify.dev/docs/api/webhooks?reference=graphql (customers/update, orders/updated,
inventory_levels/update)."""

from __future__ import annotations

from typing import Any


def legacy_id(gid: str) -> int:
    return int(gid.rsplit("/", 1)[-1].split("?")[0])


def _address(a: dict[str, Any] | None) -> dict[str, Any] | None:
    if a is None:
        return None
    out = {
        "first_name": a.get("firstName"),
        "last_name": a.get("lastName"),
        "company": a.get("company"),
        "address1": a.get("address1"),
        "address2": a.get("address2"),
        "zip": a.get("zip"),
        "city": a.get("city"),
        "country_code": a.get("countryCodeV2"),
        "phone": a.get("phone"),
    }
    if a.get("id"):
        out["id"] = legacy_id(a["id"])
    return out


def customer(c: dict[str, Any], namespaces: list[str]) -> dict[str, Any]:
    email = c.get("defaultEmailAddress") or {}
    phone = c.get("defaultPhoneNumber") or {}
    sms = phone.get("smsMarketingConsent") or {}
    out: dict[str, Any] = {
        "id": legacy_id(c["id"]),
        "admin_graphql_api_id": c["id"],
        "email": email.get("emailAddress"),
        "first_name": c.get("firstName"),
        "last_name": c.get("lastName"),
        "phone": phone.get("phoneNumber"),
        "note": c.get("note"),
        "tags": ", ".join(c.get("tags") or []),
        "created_at": c.get("createdAt"),
        "updated_at": c.get("updatedAt"),
        "default_address": _address(c.get("defaultAddress")),
        "email_marketing_consent": None
        if not email
        else {
            "state": str(email.get("marketingState", "")).lower(),
            "opt_in_level": (email.get("marketingOptInLevel") or "").lower() or None,
            "consent_updated_at": email.get("marketingUpdatedAt"),
        },
        "sms_marketing_consent": None
        if not phone
        else {"state": str(sms.get("state", "")).lower(), "consent_updated_at": sms.get("updatedAt")},
    }
    if namespaces:
        out["metafields"] = [
            {"namespace": ns, "key": key, "value": value}
            for (ns, key), value in c.get("_metafields", {}).items()
            if ns in namespaces
        ]
    return out


def _money(m: dict[str, Any] | None) -> dict[str, Any] | None:
    if not m:
        return None
    shop = m["shopMoney"]
    return {"shop_money": {"amount": shop["amount"], "currency_code": shop["currencyCode"]}}


_FULFILMENT = {"UNFULFILLED": None, "FULFILLED": "fulfilled", "PARTIALLY_FULFILLED": "partial"}


def order(o: dict[str, Any]) -> dict[str, Any]:
    ship = o.get("shippingLine")
    return {
        "id": legacy_id(o["id"]),
        "admin_graphql_api_id": o["id"],
        "name": o.get("name"),
        "email": o.get("email"),
        "phone": o.get("phone"),
        "source_name": o.get("sourceName"),
        "currency": o.get("currencyCode"),
        "financial_status": str(o.get("displayFinancialStatus") or "").lower() or None,
        "fulfillment_status": _FULFILMENT.get(o.get("displayFulfillmentStatus") or "", "partial"),
        "customer": None
        if not o.get("customer")
        else {"id": legacy_id(o["customer"]["id"]), "admin_graphql_api_id": o["customer"]["id"]},
        "subtotal_price_set": _money(o.get("subtotalPriceSet")),
        "total_shipping_price_set": _money(o.get("totalShippingPriceSet")),
        "total_tax_set": _money(o.get("totalTaxSet")),
        "total_discounts_set": _money(o.get("totalDiscountsSet")),
        "total_price_set": _money(o.get("totalPriceSet")),
        "line_items": [
            {
                "id": legacy_id(li["id"]),
                "admin_graphql_api_id": li["id"],
                "sku": li.get("sku"),
                "name": li.get("name"),
                "quantity": li.get("quantity"),
                "price_set": _money(li.get("originalUnitPriceSet")),
                "total_discount_set": _money(li.get("totalDiscountSet")),
            }
            for li in o.get("lineItems", [])
        ],
        "shipping_lines": []
        if not ship
        else [
            {
                "title": ship.get("title"),
                "code": ship.get("code"),
                "source": ship.get("source"),
                "price_set": _money(ship.get("originalPriceSet")),
            }
        ],
        "note_attributes": [{"name": a["key"], "value": a.get("value")} for a in o.get("customAttributes", [])],
        "shipping_address": _address(o.get("shippingAddress")),
        "billing_address": _address(o.get("billingAddress")),
        "fulfillments": [
            {
                "id": legacy_id(f["id"]),
                "admin_graphql_api_id": f["id"],
                "status": str(f.get("status", "")).lower(),
                "tracking_company": (f.get("trackingInfo") or [{}])[0].get("company"),
                "tracking_numbers": [t.get("number") for t in f.get("trackingInfo", [])],
                "tracking_urls": [t.get("url") for t in f.get("trackingInfo", [])],
            }
            for f in o.get("fulfillments", [])
        ],
        "tags": ", ".join(o.get("tags") or []),
        "note": o.get("note"),
        "processed_at": o.get("processedAt"),
        "updated_at": o.get("updatedAt"),
    }


def inventory_level(level: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    available = next((q["quantity"] for q in level["quantities"] if q["name"] == "available"), None)
    return {
        "inventory_item_id": legacy_id(item["id"]),
        "location_id": legacy_id(level["location"]["id"]),
        "available": available,
        "updated_at": level["updatedAt"],
        "admin_graphql_api_id": level["id"],
    }
