"""Writing web orders as Tryton sales (sale.sale + sale.line), then quoting and confirming them.

sale.sale — https://docs.tryton.org/modules-sale/design.html. An RPC create does not run the
client's on_change calls, so what they would fill is filled here: the line's unit (the product's
default unit), its taxes (the product's ``customer_taxes_used``), the invoice address (the delivery
address, else the party's first). The shop's price is kept (``unit_price`` from the order).

Idempotency: a sale's ``reference`` holds the web order's number (the mapping's identity), or the
canonical id when the order has none; it is looked up before create. A sale is written only while
it is a draft: once confirmed, Tryton owns it (its state and amounts come back to the hub) and a
change from the hub is refused per record. ``confirm_sales`` (default true) quotes and confirms
a new sale so the warehouse ships it.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from core.connector import WriteRequest, WriteResult
from core.errors import RecordRejected, SynchubError

if TYPE_CHECKING:
    from .connector import TrytonConnector

FIELDS = ["id", "reference", "state", "party"]


def _decimal(value: Any, what: str) -> Decimal:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError) as exc:
        raise RecordRejected(f"{what} {value!r} is not a number", code="INVALID_NUMBER") from exc


def _products(conn: TrytonConnector, codes: list[str]) -> dict[str, dict[str, Any]]:
    if not codes:
        return {}
    # the product's customer taxes are its account category's (account_product: a template property)
    rows = conn.client.search_read(
        "product.product",
        [["code", "in", sorted(set(codes))]],
        ["id", "code", "default_uom", "template.account_category.customer_taxes_used"],
    )
    out = {}
    for r in rows:
        category = ((r.get("template.") or {}).get("account_category.")) or {}
        out[str(r["code"])] = {**r, "taxes": list(category.get("customer_taxes_used") or [])}
    return out


def _address(conn: TrytonConnector, party: int, addr: dict[str, Any] | None) -> int | None:
    """The party's address equal to ``addr`` (created when missing); else the party's first address."""
    if addr and any(addr.get(k) for k in ("street", "postal_code", "city")):
        country = None
        code = (addr.get("country") or {}).get("code") if isinstance(addr.get("country"), dict) else None
        if code:
            country = conn.id_of("country.country", "code", code)
            if country is None:
                raise RecordRejected(f"Tryton has no country with the code {code!r}", code="UNKNOWN_COUNTRY")
        vals = {"street": addr.get("street"), "postal_code": addr.get("postal_code"), "city": addr.get("city")}
        domain: list[Any] = [["party", "=", party], ["country", "=", country]]
        domain += [[k, "=", v] for k, v in vals.items()]
        found = conn.client.search_read("party.address", domain, ["id"], limit=1)
        if found:
            return int(found[0]["id"])
        (new,) = conn.client.model("party.address", "create", [{**vals, "party": party, "country": country}])
        return int(new)
    first = conn.client.search_read(
        "party.address", [["party", "=", party]], ["id"], limit=1, order=[["sequence", "ASC"]]
    )
    return int(first[0]["id"]) if first else None


def _sale_vals(conn: TrytonConnector, req: WriteRequest) -> dict[str, Any]:
    p = req.payload
    if p.get("party") in (None, ""):
        raise RecordRejected("a Tryton sale needs its customer (sync the customer first)", code="REQUIRED")
    party = int(p["party"])
    vals: dict[str, Any] = {"party": party, "reference": p.get("reference") or req.canonical_id}
    if p.get("comment") is not None:
        vals["comment"] = p["comment"]
    if p.get("sale_date"):
        vals["sale_date"] = dt.date.fromisoformat(str(p["sale_date"])[:10])
    code = (p.get("currency") or {}).get("code") if isinstance(p.get("currency"), dict) else None
    if code:
        currency = conn.id_of("currency.currency", "code", code)
        if currency is None:
            raise RecordRejected(f"Tryton has no currency {code!r}", code="UNKNOWN_CURRENCY")
        vals["currency"] = currency
    shipment = _address(conn, party, p.get("shipment_address"))
    if shipment is None:
        raise RecordRejected("the order has no delivery address and the party none either", code="REQUIRED")
    vals["shipment_address"] = vals["invoice_address"] = shipment
    lines = p.get("lines") or []
    codes = [str((line.get("product") or {}).get("code") or "") for line in lines]
    products = _products(conn, [c for c in codes if c])
    missing = sorted({c for c in codes if c not in products})
    if missing:
        raise RecordRejected(f"Tryton has no product with the code(s) {missing}", code="UNKNOWN_PRODUCT")
    vals["lines"] = [
        [
            "create",
            [
                {
                    "type": "line",
                    "product": products[code]["id"],
                    "unit": products[code]["default_uom"],
                    "quantity": float(_decimal(line.get("quantity"), "quantity")),
                    "unit_price": _decimal(line.get("unit_price"), "unit price"),
                    "description": line.get("description") or "",
                    "taxes": [["add", products[code]["taxes"]]],
                }
                for line, code in zip(lines, codes, strict=True)
            ],
        ]
    ]
    return vals


def write_sales(conn: TrytonConnector, batch: list[WriteRequest]) -> list[WriteResult]:
    client = conn.client
    keys = {req.canonical_id: req.payload.get("reference") or req.canonical_id for req in batch}
    found = conn.by_code("sale.sale", "reference", keys.values(), FIELDS)
    confirm = bool(conn.settings.get("confirm_sales", True))
    results: list[WriteResult] = []
    for req in batch:
        current = found.get(keys[req.canonical_id])
        try:
            if req.op != "upsert":  # a web order cancelled in the CRM: cancel the sale while Tryton lets us
                if current is not None and current["state"] in ("draft", "quotation"):
                    client.model("sale.sale", "cancel", [current["id"]])
                results.append(WriteResult(native_id=str(current["id"]) if current else req.native_id))
                continue
            if current is not None:
                if current["state"] != "draft":
                    # Tryton owns a sale once quoted: its state comes back, nothing goes in. The same
                    # order sent again (a retry, an echo) is not an error.
                    results.append(WriteResult(native_id=str(current["id"])))
                    continue
                vals = _sale_vals(conn, req)
                vals.pop("lines")  # lines of a draft are replaced only by a person in Tryton
                client.model("sale.sale", "write", [current["id"]], vals)
                sale_id = int(current["id"])
            else:
                (sale_id,) = client.model("sale.sale", "create", [_sale_vals(conn, req)])
            if confirm:
                client.model("sale.sale", "quote", [sale_id])
                client.model("sale.sale", "confirm", [sale_id])
            results.append(WriteResult(native_id=str(sale_id)))
        except SynchubError as exc:
            results.append(WriteResult(error=exc))
    ok = [r.native_id for r in results if r.ok and r.native_id]
    stamps = {rec.native_id: rec.updated_at for rec in conn.fetch("order", [str(i) for i in ok])} if ok else {}
    return [
        WriteResult(native_id=r.native_id, updated_at=stamps.get(r.native_id or "")) if r.ok else r for r in results
    ]
