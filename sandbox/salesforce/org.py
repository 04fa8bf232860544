"""The emulated org's data and the rules Salesforce applies when a record is saved.

Save-time checks, in the order the platform reports them (the error codes are the REST API's
StatusCode values: https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/sforce_api_calls_concepts_core_data_objects.htm#statuscode):
INVALID_FIELD (no such column), INVALID_FIELD_FOR_INSERT_UPDATE (read-only field), STRING_TOO_LONG,
REQUIRED_FIELD_MISSING, FIELD_CUSTOM_VALIDATION_EXCEPTION (validation rules, configurable per
object), DUPLICATE_VALUE (unique and external-id fields).
"""

from __future__ import annotations

import itertools
import string
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.salesforce.schema import DEFAULTS, ObjectDef, default_schema
from sandbox.salesforce.soql import Query, SoqlError, check_types, matches, parse, sort_key


class SaveError(Exception):
    """One record refused: Salesforce's ``{"statusCode"/"errorCode", "message", "fields"}``."""

    def __init__(self, code: str, message: str, fields: list[str] | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.fields = fields or []
        self.status = status

    def body(self, key: str = "errorCode") -> dict[str, Any]:
        return {key: self.code, "message": self.message, "fields": self.fields}


@dataclass
class ValidationRule:
    """A validation rule: when ``error_when(record)`` is true the save fails with ``message``
    (FIELD_CUSTOM_VALIDATION_EXCEPTION), pointing at ``field`` if given — as Setup's rules do."""

    error_when: Callable[[dict[str, Any]], bool]
    message: str
    field: str | None = None


_B62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def to_18(id15: str) -> str:
    """The case-insensitive 18-character form of a 15-character record id: a 3-character suffix that
    encodes the capitals of each 5-character chunk (the API returns 18-character ids):
    https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm (ID field type)"""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, ch in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if ch.isupper())
        suffix += _SUFFIX[bits]
    return id15 + suffix


def format_datetime(at: datetime) -> str:
    """dateTime as the REST API writes it: ``2026-11-20T09:15:00.000+0000`` (UTC, ISO 8601:
    https://developer.salesforce.com/docs/atlas.en-us.api.meta/api/field_types.htm, dateTime). Audit
    stamps (SystemModstamp, LastModifiedDate) carry whole seconds, as the platform's do."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class _ValueIndex:
    """One field's values (lower-cased) → the Ids of the records of one table holding them."""

    def __init__(self, table: dict[str, dict[str, Any]], name: str) -> None:
        self.table, self.name, self.count = table, name, 0
        self.by: dict[str, set[str]] = {}

    def catch_up(self) -> None:
        """Index the records added to the table since the last look (a dict keeps insertion order)."""
        if self.count < len(self.table):
            for rid, record in itertools.islice(self.table.items(), self.count, None):
                self.move(rid, {}, record)
            self.count = len(self.table)

    def ids(self, value: Any) -> set[str]:
        return self.by.get(str(value).lower(), set())

    def move(self, rid: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        old, new = before.get(self.name), after.get(self.name)
        if old == new:
            return
        if old is not None:
            self.by.get(str(old).lower(), set()).discard(rid)
        if new is not None:
            self.by.setdefault(str(new).lower(), set()).add(rid)


@dataclass
class Org:
    """Objects, records and the save rules. Thread-safe through ``lock``."""

    schema: dict[str, ObjectDef] = field(default_factory=default_schema)
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # object → Id → record
    rules: dict[str, list[ValidationRule]] = field(default_factory=dict)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC).replace(microsecond=0)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.RLock = field(default_factory=threading.RLock)
    # (object, field) → lower-cased value → Ids: the look-ups by value that saves make (external ids,
    # unique fields), so a save costs the same with 10 records or 100,000 (a scan of the table each was
    # what bounded the throughput benchmark). Built on first use, kept by create and update, built again
    # when the table was replaced (an allOrNone rollback restores a copy) or lost records.
    _by_value: dict[tuple[str, str], _ValueIndex] = field(default_factory=dict, repr=False)

    def _with_value(self, obj_name: str, name: str, value: Any) -> list[dict[str, Any]]:
        """The records of ``obj_name`` whose ``name`` equals ``value`` (case-insensitively), deleted ones
        included, oldest first. Each is checked against the record itself: the index only narrows."""
        table = self.table(obj_name)
        index = self._by_value.get((obj_name, name))
        if index is None or index.table is not table or index.count > len(table):
            index = self._by_value[(obj_name, name)] = _ValueIndex(table, name)
        index.catch_up()  # records put in the table directly (set-up code)
        found = [table[rid] for rid in index.ids(value) if rid in table and _same(table[rid].get(name), value)]
        return sorted(found, key=lambda r: str(r["Id"]))

    def _reindex(self, obj_name: str, rid: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        for (o, _), index in self._by_value.items():
            if o == obj_name:
                index.move(rid, before, after)

    def obj(self, name: str) -> ObjectDef:
        try:
            return self.schema[name]
        except KeyError:
            raise SaveError(
                "NOT_FOUND", f"The requested resource does not exist: sObject type '{name}'", status=404
            ) from None

    def table(self, name: str) -> dict[str, dict[str, Any]]:
        return self.records.setdefault(name, {})

    def new_id(self, obj: ObjectDef) -> str:
        n = next(self.ids)
        digits = ""
        while n or not digits:
            n, r = divmod(n, 62)
            digits = _B62[r] + digits
        return to_18(obj.key_prefix + "Wz0" + digits.rjust(9, "0"))

    # --- saving -------------------------------------------------------------------------------------

    def _check(self, obj: ObjectDef, values: dict[str, Any], existing: dict[str, Any] | None) -> None:
        for name in values:
            if name not in obj.fields:
                raise SaveError("INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", [name])
        readonly = [n for n in values if obj.fields[n].readonly]
        if readonly:
            raise SaveError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(readonly)}. Please check the security settings of "
                "this field and verify that it is read/write for your profile or permission set.",
                readonly,
            )
        for name, value in values.items():
            f = obj.fields[name]
            if isinstance(value, str) and f.length and f.type not in ("reference", "id") and len(value) > f.length:
                raise SaveError(
                    "STRING_TOO_LONG",
                    f"{name}: data value too large: {value[:40]} (max length={f.length})",
                    [name],
                )
        merged = {**(existing or {}), **values}
        missing = [n for n, f in obj.fields.items() if f.required and not f.defaulted and merged.get(n) in (None, "")]
        if missing:
            raise SaveError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)
        for rule in self.rules.get(obj.name, []):
            if rule.error_when(merged):
                raise SaveError("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, [rule.field] if rule.field else [])
        for name, f in obj.fields.items():
            value = values.get(name)
            if not f.unique or value in (None, ""):
                continue
            for other in self._with_value(obj.name, name, value):
                rid = other["Id"]
                if not other["IsDeleted"] and (existing is None or rid != existing["Id"]):
                    raise SaveError(
                        "DUPLICATE_VALUE",
                        f"duplicate value found: {name} duplicates value on record with id: {rid}",
                        [name],
                    )

    def __post_init__(self) -> None:
        # every org has its standard price book (Setup > Price Books), active once products are sold
        if "Pricebook2" in self.schema:
            rid = self.new_id(self.schema["Pricebook2"])
            self.table("Pricebook2")[rid] = {
                "Id": rid, "Name": "Standard Price Book", "IsActive": True, "IsStandard": True, "IsDeleted": False,
                "CreatedDate": format_datetime(self.clock()), "LastModifiedDate": format_datetime(self.clock()),
                "SystemModstamp": format_datetime(self.clock()),
            }  # fmt: skip

    def standard_pricebook(self) -> str:
        return str(next(r["Id"] for r in self.table("Pricebook2").values() if r.get("IsStandard")))

    def _derive(self, obj_name: str, values: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        """What the platform fills in or refuses around price books and order products."""
        if obj_name == "PricebookEntry" and existing is None:
            product = self.table("Product2").get(str(values.get("Product2Id")))
            if product is None:
                raise SaveError(
                    "FIELD_INTEGRITY_EXCEPTION", "field integrity exception: unknown (Product2Id)", ["Product2Id"]
                )
            return {**values, "ProductCode": product.get("ProductCode")}
        if obj_name != "OrderItem":
            return values
        if existing is not None:
            fixed = [n for n in ("OrderId", "PricebookEntryId") if n in values and values[n] != existing.get(n)]
            if fixed:
                raise SaveError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {', '.join(fixed)}.", fixed
                )
            merged = {**existing, **values}
        else:
            merged = dict(values)
            order = self.table("Order").get(str(values.get("OrderId")))
            entry = self.table("PricebookEntry").get(str(values.get("PricebookEntryId")))
            if order is None or entry is None:
                missing = "OrderId" if order is None else "PricebookEntryId"
                raise SaveError(
                    "FIELD_INTEGRITY_EXCEPTION", f"field integrity exception: unknown ({missing})", [missing]
                )
            if not order.get("Pricebook2Id"):
                raise SaveError("FIELD_INTEGRITY_EXCEPTION", "Price Book Not Set on Order", ["PricebookEntryId"])
            if entry["Pricebook2Id"] != order["Pricebook2Id"]:
                raise SaveError(
                    "FIELD_INTEGRITY_EXCEPTION",
                    "field integrity exception: PricebookEntryId (pricebook entry is in a different pricebook than "
                    "the one assigned to the order)",
                    ["PricebookEntryId"],
                )
            values = {**values, "Product2Id": entry["Product2Id"]}
        quantity, price = merged.get("Quantity"), merged.get("UnitPrice")
        if quantity is not None and price is not None:
            values = {**values, "TotalPrice": round(float(quantity) * float(price), 2)}
        return values

    def _roll_up(self, order_id: str | None) -> None:
        """Order.TotalAmount is the roll-up summary of its products' TotalPrice."""
        order = self.table("Order").get(str(order_id))
        if order is not None:
            items = [i for i in self.table("OrderItem").values() if i["OrderId"] == order_id and not i["IsDeleted"]]
            order["TotalAmount"] = round(sum(float(i.get("TotalPrice") or 0) for i in items), 2)

    def create(self, obj_name: str, values: dict[str, Any]) -> str:
        obj = self.obj(obj_name)
        with self.lock:
            self._check(obj, values, None)
            values = self._derive(obj_name, values, None)
            now = format_datetime(self.clock())
            rid = self.new_id(obj)
            record: dict[str, Any] = {n: None for n in obj.fields}
            record.update({n: False for n, f in obj.fields.items() if f.type == "boolean"})
            record.update({n: v for (o, n), v in DEFAULTS.items() if o == obj_name and n in obj.fields})
            record.update(values)
            record.update(Id=rid, IsDeleted=False, CreatedDate=now, LastModifiedDate=now, SystemModstamp=now)
            if "IsPersonAccount" in obj.fields:
                # Person Accounts: an Account whose record type is a person one, named by First/LastName
                # (IsPersonAccount is read-only and follows the record type). Here: the integration user's
                # default record type is the person one, so an Account saved with a LastName is a person.
                # https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_account.htm
                record["IsPersonAccount"] = bool(values.get("LastName"))
                if record["IsPersonAccount"]:
                    record["Name"] = " ".join(x for x in (values.get("FirstName"), values.get("LastName")) if x)
            if obj.name == "Shipment__c":  # its Name is an Auto Number SHP-{000000} (docs/salesforce-setup.md)
                record["Name"] = f"SHP-{next(self.ids):06d}"
            self.table(obj_name)[rid] = record
            for (o, _), index in self._by_value.items():
                if o == obj_name:
                    index.catch_up()
            if obj_name == "OrderItem":
                self._roll_up(record["OrderId"])
            return rid

    def update(self, obj_name: str, rid: str, values: dict[str, Any]) -> None:
        obj = self.obj(obj_name)
        with self.lock:
            existing = self.live(obj_name, rid)
            self._check(obj, values, existing)
            values = self._derive(obj_name, values, existing)
            now = format_datetime(self.clock())
            before = dict(existing)
            existing.update(values)
            existing.update(LastModifiedDate=now, SystemModstamp=now)
            self._reindex(obj_name, rid, before, existing)
            if obj_name == "OrderItem":
                self._roll_up(existing["OrderId"])

    def upsert(self, obj_name: str, ext_field: str, ext_value: str, values: dict[str, Any]) -> tuple[str, bool]:
        """Create or update by an external id; ``(Id, created)``. The upsert resource:
        https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/dome_upsert.htm"""
        obj = self.obj(obj_name)
        f = obj.fields.get(ext_field)
        if f is None or not (f.external_id or ext_field == "Id"):
            raise SaveError(
                "INVALID_FIELD", f"Provided external ID field does not exist or is not accessible: {ext_field}"
            )
        with self.lock:
            found = [r for r in self._with_value(obj_name, ext_field, ext_value) if not r["IsDeleted"]]
            if len(found) > 1:
                raise SaveError(
                    "DUPLICATE_EXTERNAL_ID",
                    f"{ext_field}: more than one record found for external id field",
                    status=300,
                )
            values = {**values, ext_field: ext_value}
            if found:
                self.update(obj_name, found[0]["Id"], values)
                return found[0]["Id"], False
            return self.create(obj_name, values), True

    def delete(self, obj_name: str, rid: str) -> None:
        """Deleted records go to the recycle bin: IsDeleted becomes true, query no longer sees them and
        queryAll still does ("QueryAll returns records that are soft deleted due to a merge or delete"):
        https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_queryall.htm
        Deleting again is ENTITY_IS_DELETED, an unknown id INVALID_CROSS_REFERENCE_KEY (the StatusCode
        list above; …/api_rest/resources_composite_sobjects_collections_delete.htm)."""
        with self.lock:
            record = self.table(obj_name).get(rid)
            if record is None:
                raise SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", status=404)
            if record["IsDeleted"]:
                raise SaveError("ENTITY_IS_DELETED", "entity is deleted", status=404)
            now = format_datetime(self.clock())
            record.update(IsDeleted=True, LastModifiedDate=now, SystemModstamp=now)
            if obj_name == "OrderItem":
                self._roll_up(record["OrderId"])

    def live(self, obj_name: str, rid: str) -> dict[str, Any]:
        record = self.table(obj_name).get(rid)
        if record is None or record["IsDeleted"]:
            raise SaveError("NOT_FOUND", "The requested resource does not exist", status=404)
        return record

    def find_object_of(self, rid: str) -> str | None:
        for name, obj in self.schema.items():
            if rid.startswith(obj.key_prefix) and rid in self.table(name):
                return name
        return None

    # --- querying ----------------------------------------------------------------------------------

    def query(self, soql: str, *, include_deleted: bool) -> list[dict[str, Any]]:
        """Every row of a query, shaped as the REST API returns them (``attributes`` first)."""
        q = parse(soql)
        obj = self._query_obj(q)
        with self.lock:
            rows = [
                r
                for r in self.table(obj.name).values()
                if (include_deleted or not r["IsDeleted"]) and matches(q.where, r, obj.types())
            ]
            rows = self._order_limit(q, obj, rows)
            if q.count:
                return [{"expr0": len(rows)}]
            return [self._shape(q, obj, r, include_deleted) for r in rows]

    def _query_obj(self, q: Query) -> ObjectDef:
        obj = self.schema.get(q.obj)
        if obj is None:
            raise SoqlError(
                f"sObject type '{q.obj}' is not supported. If you are attempting to use a custom object, be sure "
                "to append the '__c' after the entity name.",
                "INVALID_TYPE",
            )
        self._check_fields(q, obj)
        return obj

    def _check_fields(self, q: Query, obj: ObjectDef) -> None:
        used = list(q.fields) + [name for name, _, _ in q.order]
        conds: list[Any] = [q.where] if q.where is not None else []
        while conds:
            c = conds.pop()
            if hasattr(c, "parts"):
                conds.extend(c.parts)
            else:
                used.append(c.field)
                if c.field in obj.fields:
                    check_types(c, obj.fields[c.field].type)
        for name in used:
            if name not in obj.fields:
                raise SoqlError(f"No such column '{name}' on entity '{obj.name}'.", "INVALID_FIELD")

    def _order_limit(self, q: Query, obj: ObjectDef, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if q.order:
            rows = sorted(rows, key=lambda r: sort_key(r, q.order, obj.types()))
        rows = rows[q.offset :]
        return rows if q.limit is None else rows[: q.limit]

    def _shape(self, q: Query, obj: ObjectDef, record: dict[str, Any], include_deleted: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": f"/services/data/v{API_VERSION}/sobjects/{obj.name}/{record['Id']}"}
        }
        out.update({name: record.get(name) for name in q.fields})
        for sub in q.subqueries:
            if sub.obj not in obj.children:
                raise SoqlError(
                    f"Didn't understand relationship '{sub.obj}' in FROM part of query call.", "INVALID_TYPE"
                )
            child_name, fk = obj.children[sub.obj]
            child = self.schema[child_name]
            sub_q = Query(sub.fields, child_name, sub.where, sub.order, sub.limit, sub.offset)
            self._check_fields(sub_q, child)
            rows = [
                r
                for r in self.table(child_name).values()
                if r.get(fk) == record["Id"]
                and (include_deleted or not r["IsDeleted"])
                and matches(sub.where, r, child.types())
            ]
            rows = self._order_limit(sub_q, child, rows)
            shaped = [self._shape(sub_q, child, r, include_deleted) for r in rows]
            out[sub.obj] = {"totalSize": len(shaped), "done": True, "records": shaped} if shaped else None
        return out


API_VERSION = "59.0"


def _same(a: Any, b: Any) -> bool:
    # external ids match case-insensitively unless the field is unique case-sensitive (docs/salesforce-setup.md
    # makes it insensitive): "Comparisons on strings are case-sensitive for unique case-sensitive fields and
    # case-insensitive for all other fields" — the same rule as SOQL's, https://developer.salesforce.com/docs/
    # atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_comparisonoperators.htm
    return a is not None and str(a).lower() == str(b).lower()
