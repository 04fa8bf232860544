"""The Tryton 8.2 connector: parties, products, stock per warehouse, POS tickets, complaints, sales.

Settings (a spoke's TOML section): ``base_url``, ``database``, ``login``, ``password`` (secret),
``warehouses`` (codes of the stock.location warehouses whose stock is published, default all),
``complaint_type`` (id of the sale.complaint.type given to complaints from the CRM),
``overlap_seconds`` (the cursor's overlap window, default 120), ``page_size`` (records per page,
default 500), ``scan_size`` (rows per change-scan call, default 2000), ``party_domain`` (a Tryton
domain, as a list, narrowing which parties are read as customers: suppliers are parties too;
default all). The parties of the ERP's own companies are never read as customers.

Records handed to the mapping are Tryton's, decoded: Decimals and dates as text, timestamps as
ISO text (naive UTC), a Many2One read inside (``country.code``) as a nested object, a Reference
(``"sale.sale,42"``) as ``{"model", "id"}``. Every record also carries ``changed_at``: its newest
stamp, children included — a party's e-mail, phone or address lives in its own table and does not
touch the party's ``write_date`` (https://docs.tryton.org/modules-party/design.html), so those
tables are polled too and their changes surface as a change of the party.

Idempotency: a party's ``code``, a complaint's ``reference`` and a sale's ``reference`` hold the
canonical id (Tryton does not make them unique, so the connector looks them up before creating).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any, ClassVar

import httpx

from core.connector import (
    ChangePage,
    Connector,
    NativeRecord,
    RateLimit,
    WriteRequest,
    WriteResult,
    register_connector,
    secret,
)
from core.errors import ConfigError, RecordRejected, SynchubError

from .cursor import ModelCursor, stamp_of
from .rpc import TrytonClient

PARTY_FIELDS = ["id", "code", "name", "active", "lang.code", "categories.name", "create_date", "write_date"]
MECHANISM_FIELDS = ["id", "party", "type", "value", "create_date", "write_date"]
ADDRESS_FIELDS = [
    "id",
    "party",
    "street",
    "postal_code",
    "city",
    "country.code",
    "sequence",
    "create_date",
    "write_date",
]
PRODUCT_FIELDS = [
    "id", "code", "name", "description", "active", "list_price", "list_price_used",
    "identifiers.type", "identifiers.code", "create_date", "write_date",
]  # fmt: skip
POS_FIELDS = ["id", "number", "date", "total", "state", "point.name", "create_date", "write_date"]
COMPLAINT_FIELDS = [
    "id", "number", "reference", "customer", "origin", "description", "state", "type", "create_date", "write_date",
]  # fmt: skip
SALE_FIELDS = [
    "id", "number", "reference", "description", "party", "state", "invoice_state", "currency.code",
    "untaxed_amount", "tax_amount", "total_amount", "sale_date", "comment", "create_date", "write_date",
    "shipment_address.street", "shipment_address.postal_code", "shipment_address.city",
    "shipment_address.country.code",
]  # fmt: skip
SALE_LINE_FIELDS = ["id", "sale", "product.code", "description", "quantity", "unit_price", "amount", "type"]


def plain(value: Any) -> Any:
    """Decoded RPC value → what the mapping reads: text for Decimals, dates and times."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def undot(row: Mapping[str, Any]) -> dict[str, Any]:
    """Tryton answers a dotted read ``country.code`` under the key ``country.``: put it in place."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key.endswith("."):
            nested = value
            if isinstance(nested, dict):
                nested = undot(nested)
            elif isinstance(nested, list):
                nested = [undot(v) if isinstance(v, dict) else v for v in nested]
            out[key[:-1]] = nested
        elif key not in out:
            out[key] = value
    return out


def booleans(record: dict[str, Any], *names: str) -> dict[str, Any]:
    """Boolean fields as booleans: on SQLite Tryton answers 1/0."""
    for name in names:
        if name in record and record[name] is not None:
            record[name] = bool(record[name])
    return record


def reference(value: Any) -> dict[str, Any] | None:
    """A Reference field ``"sale.sale,42"`` → ``{"model": "sale.sale", "id": 42}``."""
    if not isinstance(value, str) or "," not in value:
        return None
    model, _, rid = value.partition(",")
    try:
        return {"model": model, "id": int(rid)}
    except ValueError:
        return None


@register_connector
class TrytonConnector(Connector):
    """Tryton over JSON-RPC. ``calls`` counts RPC calls (logins included)."""

    kind: ClassVar[str] = "tryton"
    batch_size: ClassVar[int] = 100
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=20, per_seconds=1.0, concurrency=2)
    entities: ClassVar[tuple[str, ...]] = ("customer", "product", "stock_level", "touchpoint", "complaint", "order")

    def __init__(
        self, name: str, settings: Mapping[str, Any] | None = None, *, transport: httpx.BaseTransport | None = None
    ) -> None:
        super().__init__(name, settings)
        s = self.settings
        missing = [k for k in ("base_url", "database", "login", "password") if not s.get(k)]
        if missing:
            raise ConfigError(f"tryton spoke {name!r} needs the settings: {', '.join(missing)}")
        self.client = TrytonClient(
            str(s["base_url"]),
            str(s["database"]),
            str(s["login"]),
            secret(s, "password") or "",
            timeout=float(s.get("timeout", 30.0)),
            transport=transport,
        )
        self.overlap = dt.timedelta(seconds=float(s.get("overlap_seconds", 120)))
        self.page_size = int(s.get("page_size", 500))
        self.scan_size = int(s.get("scan_size", 2000))
        domain = s.get("party_domain") or []
        if not isinstance(domain, list) or not all(isinstance(c, list | str) for c in domain):
            raise ConfigError(f"tryton spoke {name!r}: party_domain must be a Tryton domain (a list of clauses)")
        self.party_domain: list[Any] = domain
        self._warehouses: list[dict[str, Any]] | None = None
        self._own_parties: set[int] | None = None
        self._ids: dict[tuple[str, str], int] = {}  # (model, code) → id: countries, languages, categories

    @property
    def calls(self) -> int:
        return self.client.calls

    @calls.setter
    def calls(self, value: int) -> None:  # the base class initialises it; the client keeps the count
        pass

    def close(self) -> None:
        self.client.close()

    # --- reading ---------------------------------------------------------------------------------

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        reader: Callable[[dict[str, Any], int], tuple[list[NativeRecord], bool]] = {
            "customer": self._read_customers,
            "product": self._read_products,
            "stock_level": self._read_stock,
            "touchpoint": self._read_pos_sales,
            "complaint": self._read_complaints,
            "order": self._read_sales,
        }.get(entity)  # type: ignore[assignment]
        if reader is None:
            raise ConfigError(f"the tryton connector does not read {entity!r}")
        state: dict[str, Any] = json.loads(cursor) if cursor else {}
        records, more = reader(state, min(limit, self.page_size))
        return ChangePage(records, json.dumps(state, sort_keys=True), more=more)

    def _changed(
        self,
        state: dict[str, Any],
        model: str,
        fields: list[str],
        limit: int,
        extra: list[Any] | None = None,
        context: dict[str, Any] | None = None,
    ) -> tuple[list[dict[str, Any]], bool]:
        """Up to ``limit`` of ``model``'s rows changed since its cursor (kept in ``state[model]``).

        The rows are scanned ``scan_size`` at a time (ids and stamps only: small), so rows already
        delivered inside the overlap window cost little to skip; ``more`` when the sweep is not over.
        """
        cur = ModelCursor.load(state.get(model))
        fresh: list[dict[str, Any]] = []
        more = True
        while len(fresh) < limit:
            rows = self.client.search_read(
                model, cur.domain(extra), fields, limit=self.scan_size, order=[["id", "ASC"]], context=context
            )
            fresh += cur.take(rows)
            if len(rows) < self.scan_size:
                cur.end_sweep(self.overlap)
                more = False
                break
        state[model] = cur.dump()
        return fresh, more

    def _streams(
        self,
        state: dict[str, Any],
        primary: tuple[str, list[str]],
        secondaries: list[tuple[str, list[str]]],
        limit: int,
        context: dict[str, Any] | None = None,
    ) -> tuple[dict[str, list[dict[str, Any]]], bool]:
        """Changed rows of a primary model and of the models whose changes stand for a change of it
        (a party's contact mechanisms, a product's stock moves).

        While the primary's first sweep runs it reads every record whole, so the secondaries wait,
        their cursors started at their newest stamp when that sweep began: the initial load reads
        each record once, and a change made during it is still caught afterwards.
        """
        model, fields = primary
        initial = not ModelCursor.load(state.get(model)).swept
        for sec, _ in secondaries:
            if sec not in state:
                state[sec] = self._start_cursor(sec, context).dump()
        rows, more = self._changed(state, model, fields, limit, context=context)
        out = {model: rows}
        if initial:
            return out, more
        for sec, sec_fields in secondaries:
            out[sec], m = self._changed(state, sec, sec_fields, limit, context=context)
            more |= m
        return out, more

    def _start_cursor(self, model: str, context: dict[str, Any] | None) -> ModelCursor:
        """A cursor past everything ``model`` holds now: its rows inside the overlap window are
        marked seen, so only what changes from here on is delivered."""
        stamps = []
        for order_field, domain in (("id", []), ("write_date", [["write_date", "!=", None]])):
            rows = self.client.search_read(
                model, domain, ["create_date", "write_date"], limit=1, order=[[order_field, "DESC"]], context=context
            )
            stamps += [s for s in (stamp_of(r) for r in rows) if s is not None]
        if not stamps:
            return ModelCursor(swept=True)
        newest = max(stamps)
        cur = ModelCursor(since=newest - self.overlap, high=newest, swept=True)
        window = self.client.search_read(
            model, cur.domain(), ["id", "create_date", "write_date"], order=[["id", "ASC"]], context=context
        )
        cur.take(window)
        cur.after_id = 0
        return cur

    # customers: party.party plus the two tables that change a party without touching it

    def _read_customers(self, state: dict[str, Any], limit: int) -> tuple[list[NativeRecord], bool]:
        child = ["id", "party", "create_date", "write_date"]
        rows, more = self._streams(
            state,
            ("party.party", ["id", "create_date", "write_date"]),
            [("party.contact_mechanism", child), ("party.address", child)],
            limit,
            context={"active_test": False},
        )
        ids = {int(r["id"]) for r in rows["party.party"]}
        for model in ("party.contact_mechanism", "party.address"):
            ids.update(int(r["party"]) for r in rows.get(model, []) if r.get("party"))
        ids -= self._company_parties()
        return self._parties(sorted(ids), self.party_domain), more

    def _company_parties(self) -> set[int]:
        """The parties of the ERP's own companies (company.company.party): the retailer itself is a
        party in Tryton, and must not become one of its customers. Read once."""
        if self._own_parties is None:
            rows = self.client.search_read("company.company", [], ["party"], context={"active_test": False})
            self._own_parties = {int(r["party"]) for r in rows if r.get("party")}
        return self._own_parties

    def _parties(self, ids: list[int], domain: list[Any] | None = None) -> list[NativeRecord]:
        """Full party records (contact mechanisms and addresses inside), in id order; ``domain``
        narrows them (the reads use ``party_domain``; the writes must see every party)."""
        if not ids:
            return []
        ctx = {"active_test": False}
        parties = self.client.search_read(
            "party.party", [["id", "in", ids], *(domain or [])], PARTY_FIELDS, context=ctx
        )
        mechanisms = self.client.search_read(
            "party.contact_mechanism", [["party", "in", ids]], MECHANISM_FIELDS, order=[["id", "ASC"]], context=ctx
        )
        addresses = self.client.search_read(
            "party.address", [["party", "in", ids]], ADDRESS_FIELDS,
            order=[["sequence", "ASC"], ["id", "ASC"]], context=ctx,
        )  # fmt: skip
        children: dict[int, dict[str, list[dict[str, Any]]]] = {i: {"cm": [], "ad": []} for i in ids}
        for cm in mechanisms:
            children[int(cm["party"])]["cm"].append(cm)
        for ad in addresses:
            children[int(ad["party"])]["ad"].append(ad)
        out = []
        for party in sorted(parties, key=lambda p: int(p["id"])):
            pid = int(party["id"])
            kids = children.get(pid, {"cm": [], "ad": []})
            stamps = [s for s in (stamp_of(r) for r in [party, *kids["cm"], *kids["ad"]]) if s is not None]
            changed = max(stamps) if stamps else None
            record = booleans(undot(party), "active")
            record["contact_mechanisms"] = [
                {k: v for k, v in cm.items() if k not in ("party", "create_date", "write_date")} for cm in kids["cm"]
            ]
            record["addresses"] = [
                {k: v for k, v in undot(ad).items() if k not in ("party", "create_date", "write_date", "sequence")}
                for ad in kids["ad"]
            ]
            record["changed_at"] = changed
            out.append(
                NativeRecord(
                    str(pid), plain(record), deleted=record.get("active") is False,
                    updated_at=changed.replace(tzinfo=dt.UTC) if changed else None,
                )
            )  # fmt: skip
        return out

    # products and stock

    def _read_products(self, state: dict[str, Any], limit: int) -> tuple[list[NativeRecord], bool]:
        ctx = {"active_test": False}
        rows, more = self._streams(
            state,
            ("product.product", ["id", "create_date", "write_date"]),
            [("product.template", ["id", "products", "create_date", "write_date"])],
            limit,
            context=ctx,
        )
        ids = {int(r["id"]) for r in rows["product.product"]}
        for t in rows.get("product.template", []):
            ids.update(int(p) for p in t.get("products") or [])
        products = self.client.search_read(
            "product.product", [["id", "in", sorted(ids)]], PRODUCT_FIELDS, order=[["id", "ASC"]], context=ctx
        ) if ids else []  # fmt: skip
        out = []
        for p in products:
            record = booleans(undot(p), "active")
            record["changed_at"] = stamp_of(p)
            out.append(NativeRecord(str(p["id"]), plain(record), updated_at=_aware(stamp_of(p))))
        return out, more

    def warehouses(self) -> list[dict[str, Any]]:
        """The published warehouses (id, code), from the ``warehouses`` setting (codes)."""
        if self._warehouses is None:
            wanted = self.settings.get("warehouses")
            domain: list[Any] = [["type", "=", "warehouse"]]
            if wanted:
                domain.append(["code", "in", [str(w) for w in wanted]])
            self._warehouses = self.client.search_read(
                "stock.location", domain, ["id", "code", "name"], order=[["id", "ASC"]]
            )
            if wanted and len(self._warehouses) != len(set(wanted)):
                found = {w["code"] for w in self._warehouses}
                raise ConfigError(f"Tryton has no warehouse with the code(s): {sorted(set(wanted) - found)}")
        return self._warehouses

    def _read_stock(self, state: dict[str, Any], limit: int) -> tuple[list[NativeRecord], bool]:
        """Stock changes surface as stock moves (a move done or planned changes a product's quantity,
        not its write_date); new products as products. One record per product and warehouse."""
        rows, more = self._streams(
            state,
            ("product.product", ["id", "create_date", "write_date"]),
            [("stock.move", ["id", "product", "create_date", "write_date"])],
            limit,
            context={"active_test": False},
        )
        # a product's stock changed when it or one of its moves last did: that is the level's time
        stamps: dict[int, dt.datetime | None] = {}
        for pid, stamp in [(int(p["id"]), stamp_of(p)) for p in rows["product.product"]] + [
            (int(m["product"]), stamp_of(m)) for m in rows.get("stock.move", []) if m.get("product")
        ]:
            known = stamps.get(pid)
            stamps[pid] = max(known, stamp) if known is not None and stamp is not None else (known or stamp)
        return self.stock_levels(sorted(stamps), stamps), more

    def stock_levels(
        self, product_ids: list[int], stamps: Mapping[int, dt.datetime | None] | None = None
    ) -> list[NativeRecord]:
        """Quantity on hand and forecast of these products in each published warehouse."""
        out: list[NativeRecord] = []
        if not product_ids:
            return out
        for wh in self.warehouses():
            rows = self.client.search_read(
                "product.product", [["id", "in", product_ids]], ["id", "code", "quantity", "forecast_quantity"],
                order=[["id", "ASC"]], context={"locations": [wh["id"]], "active_test": False},
            )  # fmt: skip
            for r in rows:
                stamp = (stamps or {}).get(int(r["id"]))
                record = {
                    "id": f"{r['id']}@{wh['id']}",
                    "product": r["id"],
                    "code": r.get("code"),
                    "location": {"id": wh["id"], "code": wh.get("code")},
                    "quantity": r.get("quantity"),
                    "forecast_quantity": r.get("forecast_quantity"),
                    "changed_at": stamp,
                }
                out.append(NativeRecord(record["id"], plain(record), updated_at=_aware(stamp)))
        return out

    # POS tickets → touchpoints

    def _pos_has_party(self) -> bool:
        key = ("ir.model.field", "sale.point.sale.party")
        if key not in self._ids:
            found = self.client.search_read(
                "ir.model.field", [["model", "=", "sale.point.sale"], ["name", "=", "party"]], ["id"]
            )
            self._ids[key] = 1 if found else 0
        return bool(self._ids[key])

    def _read_pos_sales(self, state: dict[str, Any], limit: int) -> tuple[list[NativeRecord], bool]:
        """Completed tickets (done or posted). The customer is the ``party`` the synchub_pos server
        module adds; without it a ticket is anonymous (``party`` null)."""
        fields = POS_FIELDS + (["party"] if self._pos_has_party() else [])
        rows, more = self._changed(state, "sale.point.sale", fields, limit, extra=[["state", "in", ["done", "posted"]]])
        out = []
        for r in rows:
            record = undot(r)
            record.setdefault("party", None)
            record["changed_at"] = stamp_of(r)
            out.append(NativeRecord(str(r["id"]), plain(record), updated_at=_aware(stamp_of(r))))
        return out, more

    # complaints

    def _read_complaints(self, state: dict[str, Any], limit: int) -> tuple[list[NativeRecord], bool]:
        rows, more = self._changed(state, "sale.complaint", COMPLAINT_FIELDS, limit)
        return [self._complaint_record(r) for r in rows], more

    def _complaint_record(self, r: dict[str, Any]) -> NativeRecord:
        record = dict(r)
        record["origin"] = reference(r.get("origin"))
        record["changed_at"] = stamp_of(r)
        return NativeRecord(str(r["id"]), plain(record), updated_at=_aware(stamp_of(r)))

    # sales

    def _read_sales(self, state: dict[str, Any], limit: int) -> tuple[list[NativeRecord], bool]:
        rows, more = self._changed(state, "sale.sale", ["id", "create_date", "write_date"], limit)
        return self._sales([int(r["id"]) for r in rows]), more

    def _sales(self, ids: list[int]) -> list[NativeRecord]:
        if not ids:
            return []
        sales = self.client.search_read("sale.sale", [["id", "in", ids]], SALE_FIELDS, order=[["id", "ASC"]])
        lines = self.client.search_read(
            "sale.line", [["sale", "in", ids], ["type", "=", "line"]], SALE_LINE_FIELDS, order=[["id", "ASC"]]
        )
        by_sale: dict[int, list[dict[str, Any]]] = {}
        for line in lines:
            by_sale.setdefault(int(line["sale"]), []).append(
                {k: v for k, v in undot(line).items() if k not in ("sale", "type")}
            )
        out = []
        for s in sales:
            record = undot(s)
            record["lines"] = by_sale.get(int(s["id"]), [])
            record["changed_at"] = stamp_of(s)
            out.append(NativeRecord(str(s["id"]), plain(record), updated_at=_aware(stamp_of(s))))
        return out

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        ids = [int(i) for i in native_ids if i.isdigit()]
        if entity == "customer":
            return self._parties(ids)
        if entity == "order":
            return self._sales(ids)
        if entity == "complaint":
            rows = self.client.search_read("sale.complaint", [["id", "in", ids]], COMPLAINT_FIELDS)
            return [self._complaint_record(r) for r in rows]
        if entity == "stock_level":
            return self.stock_levels(sorted({int(i.split("@")[0]) for i in native_ids}))
        raise NotImplementedError(f"tryton fetch of {entity}")

    # --- writing ---------------------------------------------------------------------------------

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        if entity == "customer":
            from .parties import write_parties

            return write_parties(self, batch)
        if entity == "complaint":
            from .complaints import write_complaints

            return write_complaints(self, batch)
        if entity == "order":
            from .sales import write_sales

            return write_sales(self, batch)
        refused = RecordRejected(f"{entity} is owned by Tryton: the connector does not write it", code="READ_ONLY")
        return [WriteResult(error=refused) for _ in batch]

    def id_of(self, model: str, field: str, value: str, *, create: dict[str, Any] | None = None) -> int | None:
        """The id of the ``model`` record whose ``field`` equals ``value`` (cached); created from
        ``create`` when given and missing (party categories), else None."""
        key = (model, f"{field}={value}")
        if key not in self._ids:
            found = self.client.search_read(model, [[field, "=", value]], ["id"], limit=1)
            if found:
                self._ids[key] = int(found[0]["id"])
            elif create is not None:
                self._ids[key] = int(self.client.model(model, "create", [create])[0])
            else:
                return None
        return self._ids[key]

    def by_code(self, model: str, field: str, codes: Iterable[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """Records whose ``field`` is one of ``codes`` (the canonical ids), keyed by that value."""
        codes = sorted(set(codes))
        if not codes:
            return {}
        rows = self.client.search_read(
            model, [[field, "in", codes]], fields, order=[["id", "ASC"]], context={"active_test": False}
        )
        out: dict[str, dict[str, Any]] = {}
        for r in rows:
            out.setdefault(str(r[field]), r)  # the oldest wins if someone made a duplicate by hand
        return out


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None else None


def rejected(exc: SynchubError) -> WriteResult:
    return WriteResult(error=exc)
