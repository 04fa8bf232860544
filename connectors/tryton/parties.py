"""Writing customers as parties: idempotent by ``code`` (the canonical id), children by type.

The payload is what mappings/tryton.yaml produces on the way out: ``name``, ``contact_mechanisms``
(``[{type, value}]``), ``addresses`` (``[{street, postal_code, city, country: {code}}]``),
``lang: {code}``, ``categories: [{name}]``. Tryton writes One2Many children with actions
(``[["create", [...]], ["write", [ids], {...}]]``, https://docs.tryton.org/latest/server/ref/models.html
``ModelStorage.write``); a contact mechanism is matched to an existing one by its type (the mapping
carries one per type), an address by position.

Why look up before create: Tryton has no unique constraint on ``code`` and no upsert, so a write
whose answer was lost (the party was created, the connector crashed) would otherwise create a
second party when retried. The lookup runs for the whole batch in one call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.connector import WriteRequest, WriteResult
from core.errors import RecordRejected, SynchubError

if TYPE_CHECKING:
    from .connector import TrytonConnector


def _relational(conn: TrytonConnector, payload: dict[str, Any]) -> dict[str, Any]:
    """Payload values that name other records by code → their ids (country, language, category)."""
    vals: dict[str, Any] = {}
    if "name" in payload:
        vals["name"] = payload["name"]
    if "lang" in payload:
        code = (payload["lang"] or {}).get("code") if isinstance(payload["lang"], dict) else None
        vals["lang"] = conn.id_of("ir.lang", "code", code) if code else None
    return vals


def _address_vals(conn: TrytonConnector, addr: dict[str, Any]) -> dict[str, Any]:
    vals = {k: addr[k] for k in ("street", "postal_code", "city") if k in addr}
    if "country" in addr:
        code = (addr["country"] or {}).get("code") if isinstance(addr["country"], dict) else None
        country = conn.id_of("country.country", "code", code) if code else None
        if code and country is None:
            raise RecordRejected(f"Tryton has no country with the code {code!r}", code="UNKNOWN_COUNTRY")
        vals["country"] = country
    return vals


def _children_actions(
    conn: TrytonConnector, payload: dict[str, Any], existing: dict[str, Any] | None
) -> dict[str, list[Any]]:
    actions: dict[str, list[Any]] = {}
    if "contact_mechanisms" in payload:
        current = {cm["type"]: cm for cm in (existing or {}).get("contact_mechanisms", [])}
        acts: list[Any] = []
        for cm in payload["contact_mechanisms"] or []:
            if not cm.get("value"):
                continue
            have = current.get(cm["type"])
            if have is None:
                acts.append(["create", [{"type": cm["type"], "value": cm["value"]}]])
            elif have.get("value") != cm["value"]:
                acts.append(["write", [have["id"]], {"value": cm["value"]}])
        if acts:
            actions["contact_mechanisms"] = acts
    if "addresses" in payload:
        current_addrs = (existing or {}).get("addresses", [])
        acts = []
        for i, addr in enumerate(payload["addresses"] or []):
            if not any(addr.get(k) for k in ("street", "postal_code", "city", "country")):
                continue
            vals = _address_vals(conn, addr)
            if i < len(current_addrs):
                have = current_addrs[i]
                diff = {k: v for k, v in vals.items() if _current(have, k) != v}
                if diff:
                    acts.append(["write", [have["id"]], diff])
            else:
                acts.append(["create", [vals]])
        if acts:
            actions["addresses"] = acts
    if "categories" in payload:
        wanted = [c.get("name") for c in payload["categories"] or [] if c.get("name")]
        have_names = {c.get("name") for c in (existing or {}).get("categories", [])}
        add = [conn.id_of("party.category", "name", n, create={"name": n}) for n in wanted if n not in have_names]
        if add:
            actions["categories"] = [["add", add]]
    return actions


def _current(addr: dict[str, Any], key: str) -> Any:
    if key == "country":
        country = addr.get("country")
        return country.get("id") if isinstance(country, dict) else country
    return addr.get(key)


def write_parties(conn: TrytonConnector, batch: list[WriteRequest]) -> list[WriteResult]:
    client = conn.client
    results: list[WriteResult | None] = [None] * len(batch)
    upserts = [(i, r) for i, r in enumerate(batch) if r.op == "upsert"]
    # 1. who exists already: by the canonical id in `code` (one call), else by a known native id
    found = conn.by_code("party.party", "code", [r.canonical_id for _, r in upserts], ["id", "code"])
    party_ids: dict[int, int] = {}
    for i, req in upserts:
        if req.canonical_id in found:
            party_ids[i] = int(found[req.canonical_id]["id"])
        elif req.native_id and req.native_id.isdigit():
            party_ids[i] = int(req.native_id)
    existing = {int(r.native_id): r.data for r in conn._parties(sorted(set(party_ids.values())))}
    # 2. updates in one call (Tryton's write takes pairs: records, values, records, values, …) and
    #    creates in one call; if Tryton refuses either, one by one so one bad record fails alone
    updates: list[tuple[int, int, dict[str, Any]]] = []
    creates: list[tuple[int, dict[str, Any]]] = []
    for i, req in upserts:
        try:
            vals = _relational(conn, req.payload)
            children = _children_actions(conn, req.payload, existing.get(party_ids.get(i, -1)))
        except SynchubError as exc:
            results[i] = WriteResult(error=exc)
            continue
        if i in party_ids and party_ids[i] in existing:
            pid = party_ids[i]
            current = existing[pid]
            # `code` is set on create only: Tryton makes it read-only afterwards (a party keyed in
            # Tryton keeps its own code and is found through the cross-reference instead)
            diff = {k: v for k, v in vals.items() if _flat(current.get(k)) != v}
            diff.update(children)
            results[i] = WriteResult(native_id=str(pid))
            if diff:
                updates.append((i, pid, diff))
        else:
            creates.append((i, {**vals, "code": batch[i].canonical_id, **children}))
    if updates:
        try:
            client.model("party.party", "write", *[x for _, pid, diff in updates for x in ([pid], diff)])
        except RecordRejected:
            for i, pid, diff in updates:
                try:
                    client.model("party.party", "write", [pid], diff)
                except SynchubError as exc:
                    results[i] = WriteResult(error=exc)
    if creates:
        try:
            new_ids = client.model("party.party", "create", [v for _, v in creates])
            for (i, _), new_id in zip(creates, new_ids, strict=True):
                results[i] = WriteResult(native_id=str(new_id))
        except RecordRejected:
            for i, vals in creates:
                try:
                    (new_id,) = client.model("party.party", "create", [vals])
                    results[i] = WriteResult(native_id=str(new_id))
                except SynchubError as exc:
                    results[i] = WriteResult(error=exc)
    # 3. deletes and erasure: Tryton keeps parties referenced by documents, so archive (and blank)
    for i, req in enumerate(batch):
        if req.op == "upsert":
            continue
        pid_text = req.native_id or str(found.get(req.canonical_id, {}).get("id", ""))
        if not pid_text.isdigit():
            results[i] = WriteResult(native_id=req.native_id)
            continue
        archive: dict[str, Any] = {"active": False}
        if req.op == "erase":  # the code stays: a random id, not personal data, and read-only in Tryton
            archive["name"] = "(erased)"
        try:
            client.model("party.party", "write", [int(pid_text)], archive)
            if req.op == "erase":
                for model in ("party.contact_mechanism", "party.address"):
                    ids = [r["id"] for r in client.search_read(model, [["party", "=", int(pid_text)]], ["id"])]
                    if ids:
                        client.model(model, "delete", ids)
            results[i] = WriteResult(native_id=pid_text)
        except SynchubError as exc:
            results[i] = WriteResult(error=exc)
    # 4. the stamps after the write, so the core recognises the echo of its own write
    written = sorted({int(r.native_id) for r in results if r is not None and r.ok and r.native_id})
    stamps = {rec.native_id: rec.updated_at for rec in conn._parties(written)} if written else {}
    out: list[WriteResult] = []
    for r in results:
        assert r is not None  # every request got a result above
        out.append(WriteResult(native_id=r.native_id, updated_at=stamps.get(r.native_id or "")) if r.ok else r)
    return out


def _flat(value: Any) -> Any:
    """A read Many2One (``{"id", "code"}`` after undot) compared with the id we would write."""
    if isinstance(value, dict):
        return value.get("id")
    return value
