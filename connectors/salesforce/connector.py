"""The Salesforce hub connector: simple-salesforce over a retrying session, with our own OAuth,
sObject Collections writes, an incremental SOQL cursor, a startup check and API-limit pacing.

Settings (the ``[hub]`` TOML section)::

    login_url      https://acme.my.salesforce.com (token endpoint: {login_url}/services/oauth2/token)
    client_id      the connected app's consumer key
    private_key    PEM (secret) → JWT bearer;  client_secret (secret) → client credentials;
    username, password + security_token (secrets) → username-password.  ``auth`` forces one.
    ca_bundle      path of the CA bundle to verify the server with (default: the system's)
    api_version    "59.0";  external_id_field  "Synchub_Id__c"
    objects        {entity = "SObject"} overrides;  fields {entity = [..]} the fields to read/check
    filters        {entity = {Field = value}}: a record belongs to the entity only with these values
    person_accounts  true: customers are Person Accounts (Account, Person* fields) instead of Contacts
    pause_reads_at 0.8 / pause_writes_at 0.95: shares of the daily API allocation; pause_seconds 900
    query_batch_size  200–2000 rows per query page (Sforce-Query-Options)
    read_lag_seconds  2: reads stop this far behind now, so a second is complete before the cursor passes it
"""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, TypeVar

import orjson
import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError

from connectors.salesforce.auth import fetch_token
from connectors.salesforce.errors import call_error, record_error
from connectors.salesforce.session import RetryingSession
from connectors.salesforce.soql import ident, literal, select, soql
from core.connector import ChangePage, Connector, NativeRecord, RateLimit, WriteRequest, WriteResult
from core.errors import ConfigError, RateLimited, RecordRejected, TransientError

T = TypeVar("T")


class _Salesforce(Salesforce):
    """simple-salesforce with its answers decoded by orjson.

    The library decodes every answer with the standard library and an ``OrderedDict`` per object,
    3–4 % of a worker's CPU in bench/throughput (py-spy), a quarter of it with orjson.
    orjson gives the same values (numbers as int or float, as the default decoder does);
    what it refuses goes through the library's own decoding, which raises its usual error."""

    def parse_result_to_json(self, result: requests.Response) -> Any:
        try:
            return orjson.loads(result.content)
        except orjson.JSONDecodeError:
            return super().parse_result_to_json(result)


DEFAULT_OBJECTS = {
    "customer": "Contact",
    "account": "Account",
    "order": "Order",
    "product": "Product2",
    "complaint": "Case",
    "return": "Case",
    "shipment": "Shipment__c",
    "touchpoint": "Task",
}
DEFAULT_FILTERS: dict[str, dict[str, Any]] = {"complaint": {"Type": "Complaint"}, "return": {"Type": "Return"}}
ORDER_ITEM_FIELDS = ["Id", "Sku__c", "Product2Id", "Description", "Quantity", "UnitPrice", "TotalPrice"]
SYSTEM_FIELDS = ("Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedDate")
READ_ONLY = {"Id", "IsDeleted", "SystemModstamp", "CreatedDate", "LastModifiedDate", "TotalAmount", "TotalPrice"}
MAX_BATCH = 200  # sObject Collections: up to 200 records a call, one API call

# Person Accounts: the contact fields of a person live on Account under other names
# (https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_account.htm)
PERSON_FIELDS = {
    "Email": "PersonEmail",
    "MobilePhone": "PersonMobilePhone",
    "Phone": "PersonMobilePhone",
    "MailingStreet": "PersonMailingStreet",
    "MailingPostalCode": "PersonMailingPostalCode",
    "MailingCity": "PersonMailingCity",
    "MailingState": "PersonMailingState",
    "MailingCountryCode": "PersonMailingCountryCode",
    "HasOptedOutOfEmail": "PersonHasOptedOutOfEmail",
    "DoNotCall": "PersonDoNotCall",
    "Birthdate": "PersonBirthdate",
}


@dataclass(frozen=True)
class ApiUsage(Mapping[str, int]):
    """The org's daily API usage as the last ``Sforce-Limit-Info`` header said.

    Also a read-only mapping ``{"used": …, "limit": …}``: the shape the dashboard and the
    ``synchub_api_quota_used_ratio`` metric read a connector's ``api_usage`` in
    (``core.sync.operations.api_usage``)."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        return self.used / self.limit if self.limit else 0.0

    def __getitem__(self, key: str) -> int:
        if key == "used":
            return self.used
        if key == "limit":
            return self.limit
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(("used", "limit"))

    def __len__(self) -> int:
        return 2


class SalesforceConnector(Connector):
    kind: ClassVar[str] = "salesforce"
    batch_size: ClassVar[int] = MAX_BATCH
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=20, per_seconds=1.0, concurrency=4)
    entities: ClassVar[tuple[str, ...]] = tuple(DEFAULT_OBJECTS)

    def __init__(self, name: str, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, settings)
        s = self.settings
        self.version = str(s.get("api_version") or "59.0")
        self.external_id = ident(str(s.get("external_id_field") or "Synchub_Id__c"))
        self.person_accounts = bool(s.get("person_accounts", False))
        self.objects = {**DEFAULT_OBJECTS, **dict(s.get("objects") or {})}
        if self.person_accounts and "customer" not in dict(s.get("objects") or {}):
            self.objects["customer"] = "Account"
        self.filters = {**DEFAULT_FILTERS, **dict(s.get("filters") or {})}
        self.read_fields: dict[str, list[str]] = {k: list(v) for k, v in dict(s.get("fields") or {}).items()}
        self.pause_reads_at = float(s.get("pause_reads_at", 0.8))
        self.pause_writes_at = float(s.get("pause_writes_at", 0.95))
        self.pause_seconds = float(s.get("pause_seconds", 900))
        self.batch_rows = s.get("query_batch_size")
        self.read_lag = float(s.get("read_lag_seconds", 2.0))
        self.bulk_threshold = int(s.get("bulk_threshold", 10_000))
        self.bulk_page_size = int(s.get("bulk_page_size", 50_000))
        self.api_usage: ApiUsage | None = None
        self.token_fetches = 0
        self._describes: dict[str, dict[str, Any]] = {}
        self._pricebook: str | None = None
        self._entries: dict[str, str] = {}  # SKU → standard price book entry Id
        self._lock = threading.Lock()
        self.session = RetryingSession(
            verify=str(s["ca_bundle"]) if s.get("ca_bundle") else True,
            timeout=float(s.get("timeout", 30.0)),
            attempts=int(s.get("attempts", 3)),
            on_call=self._count,
        )
        self._sf: Salesforce | None = None

    # --- plumbing -----------------------------------------------------------------------------------

    def _count(self, url: str) -> None:
        if "/services/oauth2/" not in url:  # token requests do not count against the API allocation
            with self._lock:
                self.calls += 1

    def _login(self) -> Salesforce:
        token = fetch_token(self.settings, self.session)
        self.token_fetches += 1
        self._sf = _Salesforce(
            instance_url=token.instance_url, session_id=token.access_token, session=self.session, version=self.version
        )
        return self._sf

    @property
    def sf(self) -> Salesforce:
        return self._sf or self._login()

    def _call(self, fn: Callable[[Salesforce], T]) -> T:
        """Run one API call; on INVALID_SESSION_ID log in again and repeat it once (nothing lost);
        classify every other failure; record the API usage the answer reported."""
        for attempt in (1, 2):
            sf = self.sf
            try:
                result = fn(sf)
            except SalesforceError as exc:
                content: list[Any] = exc.content if isinstance(exc.content, list) else []
                codes = [e.get("errorCode") for e in content if isinstance(e, dict)]
                if exc.status == 401 and "INVALID_SESSION_ID" in codes and attempt == 1:
                    self._login()
                    continue
                self._note_usage(sf)
                raise call_error(exc.status, exc.content, retry_after=None, pause=self.pause_seconds) from None
            except Exception as exc:  # requests' connection errors after the session's retries
                if type(exc).__module__.startswith(("requests", "urllib3")):
                    raise TransientError(f"salesforce: {type(exc).__name__}") from exc
                raise
            self._note_usage(sf)
            return result
        raise AssertionError("unreachable")

    def _note_usage(self, sf: Salesforce) -> None:
        usage = sf.api_usage.get("api-usage") if sf.api_usage else None
        if usage is not None:
            self.api_usage = ApiUsage(int(usage.used), int(usage.total))

    def _pace(self, share: float, what: str) -> None:
        """Pause work while the org's daily usage is past ``share`` of its allocation, so the API
        stays available to the people and integrations that need it more."""
        u = self.api_usage
        if u is not None and u.share >= share:
            raise RateLimited(
                f"salesforce: {what} paused, API usage {u.used}/{u.limit} is past {share:.0%} of the daily allocation",
                retry_after=self.pause_seconds,
            )

    def object_of(self, entity: str) -> str:
        try:
            return ident(self.objects[entity])
        except KeyError:
            raise ConfigError(f"salesforce: no sObject configured for entity {entity!r}") from None

    def describe(self, obj: str) -> dict[str, Any]:
        if obj not in self._describes:
            answer: Any = self._call(lambda sf: sf.restful(f"sobjects/{obj}/describe"))
            self._describes[obj] = dict(answer)
        return self._describes[obj]

    # --- field names: Contact-shaped records ↔ Person Accounts ------------------------------------

    def _to_native(self, entity: str, name: str) -> str:
        if self.person_accounts and entity == "customer":
            if name in PERSON_FIELDS:
                return PERSON_FIELDS[name]
            if name.endswith("__c") and name != self.external_id:
                return name[:-3] + "__pc"
        return name

    def _from_native(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        if not (self.person_accounts and entity == "customer"):
            return record
        back = {v: k for k, v in PERSON_FIELDS.items() if k != "Phone"}
        return {back.get(k, k[:-4] + "__c" if k.endswith("__pc") else k): v for k, v in record.items()}

    # --- reads --------------------------------------------------------------------------------------

    def _select_fields(self, entity: str, obj: str) -> list[str]:
        wanted = self.read_fields.get(entity)
        if wanted is None:
            # all fields, as describe lists them (compound address/location fields excluded: their parts are listed)
            wanted = [f["name"] for f in self.describe(obj)["fields"] if f.get("type") not in ("address", "location")]
        names = [self._to_native(entity, n) for n in wanted if "." not in n]
        for extra in (*SYSTEM_FIELDS, self.external_id):
            if extra not in names:
                names.append(extra)
        return [ident(n) for n in dict.fromkeys(names)]

    def _conditions(self, entity: str) -> list[str]:
        conds = [f"{ident(f)} = {literal(v)}" for f, v in self.filters.get(entity, {}).items()]
        if self.person_accounts and entity == "customer":
            conds.append("IsPersonAccount = true")
        return conds

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        """Records changed after ``cursor``, oldest first, deletions included (queryAll, IsDeleted).

        The cursor is the last record's (SystemModstamp, Id): the next read asks for a later stamp,
        or the same stamp and a greater Id, in that order — so rows sharing a timestamp across a
        page boundary are each read once, and an idle poll is one API call."""
        self._pace(self.pause_reads_at, "reading")
        obj = self.object_of(entity)
        fields = self._select_fields(entity, obj)
        conds = self._conditions(entity)
        if cursor:
            stamp, last_id = _decode_cursor(cursor)
            conds.append(soql("(SystemModstamp > {} OR (SystemModstamp = {} AND Id > {}))", stamp, stamp, last_id))
        if self.read_lag > 0:
            # Read only seconds that are over: a record saved later in the cursor's own second, with a
            # smaller Id, would otherwise fall behind the cursor (SystemModstamp has whole seconds).
            conds.append(soql("SystemModstamp < {}", datetime.now(UTC) - timedelta(seconds=self.read_lag)))
        children = [select(ORDER_ITEM_FIELDS, "OrderItems")] if entity == "order" and obj == "Order" else []
        query = select(fields, obj, conds, subqueries=children, order_by=["SystemModstamp", "Id"], limit=int(limit))
        headers = {"Sforce-Query-Options": f"batchSize={int(self.batch_rows)}"} if self.batch_rows else {}
        page = self._call(lambda sf: sf.query(query, include_deleted=True, headers=headers))
        rows: list[dict[str, Any]] = list(page["records"])
        while not page["done"]:
            url = page["nextRecordsUrl"]
            page = self._call(self._more(url, headers))
            rows.extend(page["records"])
        records = [self._native(entity, r) for r in rows]
        if not records:
            return ChangePage([], cursor)
        last = rows[-1]
        return ChangePage(records, _encode_cursor(last["SystemModstamp"], last["Id"]), more=len(rows) >= limit)

    def backfill(
        self, entity: str, *, page: int = 500, poll_every: float = 1.0, timeout: float = 3600.0
    ) -> Iterator[ChangePage]:
        """Every record of ``entity``, deleted ones included, in pages; only the last carries a cursor.

        Above ``bulk_threshold`` records (one ``COUNT()`` query decides) the read is a Bulk API 2.0
        ``queryAll`` job: a handful of calls for any size, results streamed as CSV pages of
        ``bulk_page_size`` rows (memory stays bounded), typed back with describe. Below it, or for
        orders (a bulk job cannot read the order products' sub-query), the REST reads page through.
        The final cursor starts incremental reads at the job's creation (less the read lag), so a
        record changed while the job ran is read again rather than missed.
        https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/queries.htm

        A backfill is the least urgent work there is: past ``pause_reads_at`` it does not start."""
        self._pace(self.pause_reads_at, "backfilling")
        obj = self.object_of(entity)
        conds = self._conditions(entity)
        nested = entity == "order" and obj == "Order"
        if not nested:
            where = (" WHERE " + " AND ".join(conds)) if conds else ""
            counted = f"SELECT COUNT() FROM {ident(obj)}{where}"  # noqa: S608 - identifier checked, values quoted
            total = int(self._call(lambda sf: sf.query(counted, include_deleted=True))["totalSize"])
            if total >= self.bulk_threshold:
                yield from self._bulk_backfill(entity, obj, conds, page, poll_every, timeout)
                return
        cursor: str | None = None
        while True:
            batch = self.read_changes(entity, cursor, page)
            cursor = batch.cursor
            if not batch.more:
                yield ChangePage(batch.records, cursor)
                return
            yield ChangePage(batch.records, None, more=True)

    def _bulk_backfill(
        self, entity: str, obj: str, conds: list[str], page: int, poll_every: float, timeout: float
    ) -> Iterator[ChangePage]:
        from simple_salesforce.bulk2 import Operation

        query = select(self._select_fields(entity, obj), obj, conds)

        def jobs(sf: Salesforce) -> Any:  # the Bulk API 2.0 client of this object, on the current session
            return getattr(sf.bulk2, obj)._client

        job = self._call(lambda sf: jobs(sf).create_job(Operation.query_all, query))
        deadline = time.monotonic() + timeout
        while True:
            info = self._call(lambda sf: jobs(sf).get_job(job["id"], True))
            if info["state"] == "JobComplete":
                break
            if info["state"] in ("Failed", "Aborted"):
                why = info.get("errorMessage", "")
                raise TransientError(f"{self.name}: bulk query job {job['id']} {info['state']}: {why}")
            if time.monotonic() > deadline:
                raise TransientError(f"{self.name}: bulk query job {job['id']} still {info['state']}")
            time.sleep(poll_every)

        def page_at(at: str) -> Callable[[Salesforce], Any]:
            return lambda sf: jobs(sf).get_query_results(job["id"], at, self.bulk_page_size)

        types = {f["name"]: f.get("type") for f in self.describe(obj)["fields"]}
        created = _parse_stamp(job["createdDate"]) or datetime.now(UTC)
        final = _encode_cursor((created - timedelta(seconds=self.read_lag)).isoformat(), "")
        locator, batch = "", []
        while True:
            result = self._call(page_at(locator))
            for row in csv.DictReader(io.StringIO(result["records"])):
                batch.append(self._native(entity, {k: _typed(v, types.get(k)) for k, v in row.items()}))
                if len(batch) >= page:
                    yield ChangePage(batch, None, more=True)
                    batch = []
            locator = result["locator"]
            if not locator:
                break
        yield ChangePage(batch, final)

    @staticmethod
    def _more(url: str, headers: dict[str, str]) -> Callable[[Salesforce], Any]:
        return lambda sf: sf.query_more(url, identifier_is_url=True, headers=headers)

    def _native(self, entity: str, row: dict[str, Any]) -> NativeRecord:
        data = self._from_native(entity, {k: v for k, v in row.items() if k != "attributes"})
        return NativeRecord(str(row["Id"]), data, bool(row.get("IsDeleted")), _parse_stamp(row.get("SystemModstamp")))

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        if not native_ids:
            return []
        obj = self.object_of(entity)
        query = select(self._select_fields(entity, obj), obj, [soql("Id IN {}", native_ids)])
        rows = self._call(lambda sf: sf.query_all(query, include_deleted=True))["records"]
        return [self._native(entity, r) for r in rows]

    def fetch_written(self, entity: str, canonical_ids: list[str]) -> list[NativeRecord]:
        """By the external id field every write stamps (bound, not concatenated: soql() escapes)."""
        if not canonical_ids:
            return []
        obj = self.object_of(entity)
        conds = [soql(f"{self.external_id} IN {{}}", canonical_ids), *self._conditions(entity)]
        query = select(self._select_fields(entity, obj), obj, conds)
        rows = self._call(lambda sf: sf.query_all(query))["records"]
        return [self._native(entity, r) for r in rows]

    # --- writes -------------------------------------------------------------------------------------

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        """Upserts by external id through sObject Collections (≤ 200 a call, allOrNone=false);
        deletions through the Collections delete. One result per request, in order."""
        self._pace(self.pause_writes_at, "writing")
        obj = self.object_of(entity)
        results: list[WriteResult | None] = [None] * len(batch)
        upserts = [(i, r) for i, r in enumerate(batch) if r.op == "upsert"]
        deletes = [(i, r) for i, r in enumerate(batch) if r.op != "upsert"]
        for start in range(0, len(upserts), MAX_BATCH):
            chunk = upserts[start : start + MAX_BATCH]
            for (i, _), res in zip(chunk, self._upsert(entity, obj, [r for _, r in chunk]), strict=True):
                results[i] = res
        for start in range(0, len(deletes), MAX_BATCH):
            chunk = deletes[start : start + MAX_BATCH]
            for (i, _), res in zip(chunk, self._delete(obj, [r for _, r in chunk]), strict=True):
                results[i] = res
        return [r if r is not None else WriteResult(error=TransientError("no result")) for r in results]

    def _record_body(self, entity: str, obj: str, req: WriteRequest) -> dict[str, Any]:
        body: dict[str, Any] = {"attributes": {"type": obj}}
        for key, value in req.payload.items():
            if key in READ_ONLY or key == "attributes" or isinstance(value, dict | list):
                continue  # system fields are Salesforce's; child records (OrderItems) are not written here
            body[self._to_native(entity, key)] = value
        body.update(self.filters.get(entity, {}))
        if self.person_accounts and entity == "customer" and self.settings.get("person_record_type_id"):
            body["RecordTypeId"] = str(self.settings["person_record_type_id"])
        body[self.external_id] = req.canonical_id
        return body

    def _upsert(self, entity: str, obj: str, batch: list[WriteRequest]) -> list[WriteResult]:
        """Records the hub already links to a Salesforce Id (a contact that existed before synchub,
        found by email) are updated by that Id, stamping the external id on them; the others are
        upserted by the external id. One call each, whichever are present."""
        records = [self._record_body(entity, obj, r) for r in batch]
        if obj == "Order":
            self._fill_accounts(records)
            book = self._standard_pricebook()
            for record in records:
                record.setdefault("Pricebook2Id", book)
        results: list[WriteResult | None] = [None] * len(batch)
        known = [i for i, r in enumerate(batch) if r.native_id]
        fresh = [i for i, r in enumerate(batch) if not r.native_id]
        if known:
            body = {"allOrNone": False, "records": [{**records[i], "Id": batch[i].native_id} for i in known]}
            answer = self._call(lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body)) or []
            for i, item in zip(known, answer, strict=False):
                results[i] = self._result(item)
        if fresh:
            payload = {"allOrNone": False, "records": [records[i] for i in fresh]}
            path = f"composite/sobjects/{obj}/{self.external_id}"
            answer = self._call(lambda sf: sf.restful(path, method="PATCH", json=payload)) or []
            for i, item in zip(fresh, answer, strict=False):
                results[i] = self._result(item)
        out = [r if r is not None else WriteResult(error=TransientError("no result for this record")) for r in results]
        if obj == "Order":
            written = [(req, res.native_id) for req, res in zip(batch, out, strict=True) if res.ok and res.native_id]
            failed = self._write_order_products(written)
            out = [WriteResult(error=failed[req.canonical_id]) if req.canonical_id in failed else res
                   for req, res in zip(batch, out, strict=True)]  # fmt: skip
        return out

    # --- order products -----------------------------------------------------------------------------

    def _standard_pricebook(self) -> str:
        """The standard price book's Id (one query per connector): every order is priced from it."""
        if self._pricebook is None:
            query = select(["Id"], "Pricebook2", ["IsStandard = true"], limit=1)
            rows = self._call(lambda sf: sf.query(query))["records"]
            if not rows:
                raise ConfigError(f"{self.name}: the org has no standard price book (Setup > Price Books)")
            self._pricebook = str(rows[0]["Id"])
        return self._pricebook

    def _write_order_products(self, orders: list[tuple[WriteRequest, str]]) -> dict[str, RecordRejected]:
        """Write each order's lines as OrderItems, upserted by ``<order id>:<line no>`` so a retry
        writes nothing twice; lines gone from the order are deleted. A few calls for the whole batch:
        the order products already there, the price book entries of new SKUs, then one collection
        call per kind of change. Returns, per canonical order id, why its products could not be written.
        https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_orderitem.htm"""
        wanted: dict[str, dict[str, Any]] = {}  # external id → line
        owner: dict[str, str] = {}  # external id → canonical order id
        order_ids = {cid: oid for cid, oid in ((r.canonical_id, oid) for r, oid in orders)}
        for req, order_id in orders:
            lines = req.payload.get("OrderItems")
            if not isinstance(lines, dict):
                continue
            for n, line in enumerate(lines.get("records") or [], start=1):
                key = f"{req.canonical_id}:{n}"
                wanted[key] = {**line, "OrderId": order_id}
                owner[key] = req.canonical_id
        if not order_ids:
            return {}
        query = select(
            ["Id", "OrderId", self.external_id], "OrderItem", [f"OrderId IN {literal(sorted(order_ids.values()))}"]
        )
        existing = {
            str(r[self.external_id] or r["Id"]): r for r in self._call(lambda sf: sf.query_all(query))["records"]
        }
        failed: dict[str, RecordRejected] = {}
        entries = self._pricebook_entries(
            sorted({str(v.get("Sku__c")) for k, v in wanted.items() if k not in existing})
        )
        creates, updates = [], []
        for key, line in wanted.items():
            sku = str(line.get("Sku__c"))
            body: dict[str, Any] = {"attributes": {"type": "OrderItem"}}
            body.update({k: line.get(k) for k in ("Quantity", "UnitPrice", "Description", "Sku__c")})
            if key in existing:
                updates.append((key, {**body, "Id": existing[key]["Id"]}))
            elif sku in entries:
                fixed = {"OrderId": line["OrderId"], "PricebookEntryId": entries[sku], self.external_id: key}
                creates.append((key, {**body, **fixed}))
            else:
                failed[owner[key]] = RecordRejected(
                    f"order product {line.get('Sku__c')!r}: no product with this SKU (ProductCode) in the CRM",
                    code="FIELD_INTEGRITY_EXCEPTION",
                )
        gone = [str(r["Id"]) for key, r in existing.items() if key not in wanted]
        for method, items in (("POST", creates), ("PATCH", updates)):
            for start in range(0, len(items), MAX_BATCH):
                chunk = items[start : start + MAX_BATCH]
                answer = self._collection(method, {"allOrNone": False, "records": [b for _, b in chunk]})
                for (key, _), item in zip(chunk, answer, strict=False):
                    if not item.get("success"):
                        error = record_error(item.get("errors") or [])
                        failed[owner[key]] = RecordRejected(
                            f"order product {key}: {error}", code=getattr(error, "code", None)
                        )
        for start in range(0, len(gone), MAX_BATCH):
            self._collection("DELETE", params={"ids": ",".join(gone[start : start + MAX_BATCH]), "allOrNone": "false"})
        return failed

    def _collection(
        self, method: str, body: dict[str, Any] | None = None, params: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """One sObject Collections call (create, update or delete up to 200 records)."""
        answer = self._call(lambda sf: sf.restful("composite/sobjects", method=method, json=body, params=params))
        return list(answer or [])

    def _pricebook_entries(self, skus: list[str]) -> dict[str, str]:
        """SKU → standard price book entry Id; an active Product2 without one gets it (at its Price__c)."""
        todo = [s for s in skus if s not in self._entries and s != "None"]
        if todo:
            book = self._standard_pricebook()
            query = select(
                ["Id", "ProductCode"],
                "PricebookEntry",
                [f"Pricebook2Id = {literal(book)}", f"ProductCode IN {literal(todo)}"],
            )
            for row in self._call(lambda sf: sf.query_all(query))["records"]:
                self._entries[str(row["ProductCode"])] = str(row["Id"])
            missing = [s for s in todo if s not in self._entries]
            if missing:
                query = select(["Id", "ProductCode", "Price__c"], "Product2", [f"ProductCode IN {literal(missing)}"])
                products = self._call(lambda sf: sf.query_all(query))["records"]
                body = {"allOrNone": False, "records": [
                    {"attributes": {"type": "PricebookEntry"}, "Pricebook2Id": book, "Product2Id": p["Id"],
                     "UnitPrice": p.get("Price__c") or 0, "IsActive": True} for p in products]}  # fmt: skip
                if products:
                    made = self._call(lambda sf: sf.restful("composite/sobjects", method="POST", json=body)) or []
                    for product, item in zip(products, made, strict=False):
                        if item.get("success"):
                            self._entries[str(product["ProductCode"])] = str(item["id"])
        return {s: self._entries[s] for s in skus if s in self._entries}

    def _fill_accounts(self, records: list[dict[str, Any]]) -> None:
        """An Order needs an AccountId: the bill-to contact's account. A contact without one (a web
        shopper, in an org without Person Accounts) gets an individual account named after them, as
        Salesforce's own "individual" model does. At most three calls for the whole batch."""
        contact_ids = sorted(
            {str(r["BillToContactId"]) for r in records if r.get("BillToContactId") and not r.get("AccountId")}
        )
        if not contact_ids:
            return
        query = select(["Id", "AccountId", "FirstName", "LastName"], "Contact", [f"Id IN {literal(contact_ids)}"])
        contacts = {str(c["Id"]): c for c in self._call(lambda sf: sf.query_all(query))["records"]}
        lonely = [c for c in contacts.values() if not c.get("AccountId")]
        if lonely:
            create = {
                "allOrNone": False,
                "records": [
                    {
                        "attributes": {"type": "Account"},
                        "Name": " ".join(p for p in (c.get("FirstName"), c.get("LastName")) if p) or "Customer",
                    }
                    for c in lonely
                ],
            }
            made = self._call(lambda sf: sf.restful("composite/sobjects", method="POST", json=create)) or []
            links = []
            for contact, answer in zip(lonely, made, strict=False):
                if answer.get("success"):
                    contact["AccountId"] = answer["id"]
                    links.append({"attributes": {"type": "Contact"}, "Id": contact["Id"], "AccountId": answer["id"]})
            if links:
                body = {"allOrNone": False, "records": links}
                self._call(lambda sf: sf.restful("composite/sobjects", method="PATCH", json=body))
        for record in records:
            contact = contacts.get(str(record.get("BillToContactId")))
            if contact and contact.get("AccountId") and not record.get("AccountId"):
                record["AccountId"] = contact["AccountId"]

    def _result(self, item: dict[str, Any]) -> WriteResult:
        if item.get("success"):
            return WriteResult(native_id=str(item["id"]))
        return WriteResult(error=record_error(item.get("errors") or []))

    def _delete(self, obj: str, batch: list[WriteRequest]) -> list[WriteResult]:
        missing = [r.canonical_id for r in batch if not r.native_id]
        found: dict[str, str] = {}
        if missing:
            query = select(["Id", self.external_id], obj, [f"{self.external_id} IN {literal(missing)}"])
            rows = self._call(lambda sf: sf.query_all(query))["records"]
            found = {str(r[self.external_id]).lower(): str(r["Id"]) for r in rows}
        ids = [r.native_id or found.get(r.canonical_id.lower()) for r in batch]
        to_delete = [i for i in ids if i]
        answers: dict[str, dict[str, Any]] = {}
        if to_delete:
            params = {"ids": ",".join(to_delete), "allOrNone": "false"}
            for item in self._call(lambda sf: sf.restful("composite/sobjects", method="DELETE", params=params)) or []:
                answers[str(item.get("id"))] = item
        out: list[WriteResult] = []
        for rid in ids:
            item = answers.get(rid or "")
            if rid is None:
                out.append(WriteResult(native_id=None))  # never written: nothing to delete
            elif item is None or item.get("success"):
                out.append(WriteResult(native_id=rid))
            else:
                codes = {e.get("statusCode") for e in item.get("errors") or []}
                gone = codes & {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"}
                out.append(WriteResult(native_id=rid) if gone else self._result(item))
        return out

    # --- startup check ------------------------------------------------------------------------------

    def check(self, fields: Mapping[str, Mapping[str, str] | Iterable[str]] | None = None) -> None:
        """Describe every mapped object and fail fast, naming every problem at once: a missing
        object, a missing field, a field we write that is not updateable, a missing external-id
        field (with how to create it). ``fields``: entity → field names (or name → direction
        ``in``/``out``/``both``); defaults to the ``fields`` setting."""
        mapped = self.settings.get("entities") or [
            "customer",
            "order",
            "product",
            "complaint",
            "shipment",
            "touchpoint",
        ]
        wanted: Mapping[str, Mapping[str, str] | Iterable[str]] = (
            fields if fields is not None else {e: self.read_fields.get(e, []) for e in mapped}
        )
        problems: list[str] = []
        for entity, spec in wanted.items():
            obj = self.object_of(entity)
            directions = dict(spec) if isinstance(spec, Mapping) else dict.fromkeys(spec, "both")
            try:
                described = self.describe(obj)
            except ConfigError:
                problems.append(f"{entity}: sObject {obj} does not exist or the integration user cannot see it")
                continue
            by_name = {f["name"]: f for f in described["fields"]}
            ext = by_name.get(self.external_id)
            if ext is None or not ext.get("externalId"):
                state = "is missing" if ext is None else "is not marked External ID"
                problems.append(
                    f"{obj}.{self.external_id} {state}: create it in Setup → Object Manager → {obj} → Fields & "
                    f"Relationships → New: Text(36), Unique (case insensitive), External ID "
                    "(see docs/salesforce-setup.md)"
                )
            for name, direction in directions.items():
                if "." in name or name in SYSTEM_FIELDS:
                    continue
                native = self._to_native(entity, name)
                f = by_name.get(native)
                if f is None:
                    problems.append(f"{obj}.{native} is missing (mapped for {entity})")
                elif direction in ("out", "both") and not (f.get("updateable") and f.get("createable")):
                    problems.append(f"{obj}.{native} is not updateable by the integration user (mapped out)")
        if problems:
            raise ConfigError("salesforce org is not ready:\n  - " + "\n  - ".join(problems))

    def close(self) -> None:
        self.session.close()


def _typed(value: str | None, kind: str | None) -> Any:
    """A Bulk API CSV value as the REST API would give it (CSV has only text; empty is null)."""
    if value is None or value == "":
        return None
    if kind == "boolean":
        return value.lower() == "true"
    if kind in ("double", "currency", "percent"):
        return float(value)
    if kind == "int":
        return int(value)
    return value


def _encode_cursor(stamp: str, record_id: str) -> str:
    return json.dumps({"ts": stamp, "id": record_id}, separators=(",", ":"))


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        data = json.loads(cursor)
        stamp = _parse_stamp(data["ts"])
        if stamp is None:
            raise ValueError("no timestamp")
        return stamp, str(data["id"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"salesforce: unreadable cursor {cursor!r}") from exc


def _parse_stamp(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    if len(text) >= 5 and text[-5] in "+-" and text[-3] != ":":
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(UTC)
