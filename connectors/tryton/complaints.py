"""Writing CRM cases as sale complaints: idempotent by ``reference`` (the canonical id).

sale.complaint (https://docs.tryton.org/modules-sale-complaint/design.html) needs a customer
(party), a company (the user's, from the context) and a type: the spoke's ``complaint_type``
setting. Its origin is a Reference; the mapping hands over the sale's id as ``origin: {id}`` and
the connector writes ``"sale.sale,<id>"``. The state moves only by Tryton's buttons, so it is never
written; fields Tryton makes read-only after the draft state are refused by Tryton itself, and that
refusal is the record's error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.connector import WriteRequest, WriteResult
from core.errors import ConfigError, RecordRejected, SynchubError

if TYPE_CHECKING:
    from .connector import TrytonConnector

FIELDS = ["id", "reference", "customer", "origin", "description", "state"]


def _vals(payload: dict[str, Any]) -> dict[str, Any]:
    vals: dict[str, Any] = {}
    if "customer" in payload:
        vals["customer"] = int(payload["customer"]) if payload["customer"] not in (None, "") else None
    if "description" in payload:
        vals["description"] = payload["description"]
    if "origin" in payload:
        origin = payload["origin"]
        oid: Any = origin.get("id") if isinstance(origin, dict) else origin
        vals["origin"] = f"sale.sale,{int(oid)}" if oid not in (None, "") else None
    return vals


def complaint_type(conn: TrytonConnector) -> int:
    """The ``complaint_type`` setting as an id: given as one, or as the type's name (what a clerk sees
    in Tryton), looked up once."""
    setting = conn.settings.get("complaint_type")
    if setting in (None, ""):
        raise ConfigError(
            "the tryton spoke needs `complaint_type` (a sale.complaint.type name or id) to create complaints"
        )
    if isinstance(setting, int) or str(setting).isdigit():
        return int(str(setting))
    key = ("sale.complaint.type", str(setting))
    cached = conn._ids.get(key)
    if cached is None:
        rows = conn.client.search_read("sale.complaint.type", [["name", "=", str(setting)]], ["id"])
        if len(rows) != 1:
            names = sorted(str(r["name"]) for r in conn.client.search_read("sale.complaint.type", [], ["name"]))
            raise ConfigError(
                f"complaint_type = {str(setting)!r}: Tryton has {'no' if not rows else 'more than one'} "
                f"sale.complaint.type of that name (it has: {', '.join(names) or 'none'})"
            )
        cached = conn._ids[key] = int(rows[0]["id"])
    return int(cached)


def write_complaints(conn: TrytonConnector, batch: list[WriteRequest]) -> list[WriteResult]:
    client = conn.client
    found = conn.by_code("sale.complaint", "reference", [r.canonical_id for r in batch], FIELDS)
    native = [int(r.native_id) for r in batch if r.native_id and r.native_id.isdigit()]
    by_id = (
        {int(r["id"]): r for r in client.search_read("sale.complaint", [["id", "in", native]], FIELDS)}
        if native
        else {}
    )
    results: list[WriteResult] = []
    for req in batch:
        current = found.get(req.canonical_id) or (
            by_id.get(int(req.native_id)) if req.native_id and req.native_id.isdigit() else None
        )
        try:
            if req.op != "upsert":  # Tryton keeps complaints; a deletion in the CRM cancels a draft
                if current is not None and current["state"] == "draft":
                    client.model("sale.complaint", "cancel", [current["id"]])
                results.append(WriteResult(native_id=str(current["id"]) if current else req.native_id))
                continue
            vals = _vals(req.payload)
            if current is None:
                ctype = complaint_type(conn)
                if not vals.get("customer"):
                    raise RecordRejected(
                        "a Tryton complaint needs its customer (sync the customer first)", code="REQUIRED"
                    )
                (cid,) = client.model(
                    "sale.complaint", "create", [{**vals, "type": ctype, "reference": req.canonical_id}]
                )
                results.append(WriteResult(native_id=str(cid)))
                continue
            diff = {k: v for k, v in vals.items() if current.get(k) != v}
            if current.get("reference") != req.canonical_id:
                diff["reference"] = req.canonical_id
            if diff:
                client.model("sale.complaint", "write", [current["id"]], diff)
            results.append(WriteResult(native_id=str(current["id"])))
        except SynchubError as exc:
            results.append(WriteResult(error=exc))
    ok = [int(r.native_id) for r in results if r.ok and r.native_id and r.native_id.isdigit()]
    stamps = {rec.native_id: rec.updated_at for rec in conn.fetch("complaint", [str(i) for i in ok])} if ok else {}
    return [
        WriteResult(native_id=r.native_id, updated_at=stamps.get(r.native_id or "")) if r.ok else r for r in results
    ]
