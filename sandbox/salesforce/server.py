"""An HTTPS Salesforce on 127.0.0.1: the REST API resources the connector uses, with Salesforce's
status codes, error bodies, paging and limit headers, plus knobs for tests.

    with SalesforceEmulator() as sf:
        sf.base_url, sf.ca_bundle, sf.private_key_pem, sf.org (records, rules), sf.faults …

TLS because simple-salesforce builds ``https://`` URLs only (shared notes): a throwaway CA and server
certificate from ``trustme``; clients trust ``ca_bundle``. Resources and the pages they follow:
- OAuth token endpoint, grant types JWT bearer, client credentials, username-password:
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_jwt_flow.htm ,
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_client_credentials_flow.htm ,
  https://help.salesforce.com/s/articleView?id=sf.remoteaccess_oauth_username_password_flow.htm
- errors ``[{"message", "errorCode", "fields"}]`` and their HTTP statuses (401 INVALID_SESSION_ID,
  403 REQUEST_LIMIT_EXCEEDED, 503 SERVER_UNAVAILABLE):
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/errorcodes.htm
- ``Sforce-Limit-Info: api-usage=n/limit`` on every response:
  https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/headers_api_usage.htm
- describe: …/api_rest/resources_sobject_describe.htm; sObject rows: …/api_rest/resources_sobject_retrieve.htm
- upsert by external id: …/api_rest/dome_upsert.htm
- sObject Collections create/update/upsert/delete, ≤ 200 records, ``allOrNone``, per-record
  ``{"id", "success", "errors": [{"statusCode", "message", "fields"}]}``:
  …/api_rest/resources_composite_sobjects_collections_create.htm (…_update, …_upsert, …_delete)
- query / queryAll, ``nextRecordsUrl`` paging, ``Sforce-Query-Options: batchSize`` (200–2,000):
  …/api_rest/resources_query.htm, …/api_rest/resources_queryall.htm, …/api_rest/headers_queryoptions.htm
(… = https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta)
"""

from __future__ import annotations

import base64
import copy
import csv
import hashlib
import hmac
import io
import itertools
import json
import random
import re
import secrets
import ssl
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sandbox.salesforce.org import API_VERSION, Org, SaveError, ValidationRule, format_datetime, to_18
from sandbox.salesforce.soql import SoqlError
from sandbox.salesforce.soql import parse as parse_soql

__all__ = ["Faults", "SalesforceEmulator", "ValidationRule"]

MAX_COLLECTION = 200
ORG_ID = "00DWz0000000001"
USER_ID = "005Wz0000000001"


@dataclass
class Faults:
    """Per-test fault injection. ``fail_next`` answers the next calls with a whole-call error;
    ``lock_next`` makes the next records saved by a collection fail UNABLE_TO_LOCK_ROW."""

    latency: float = 0.0
    error_rate: float = 0.0  # share of calls answered 503 SERVER_UNAVAILABLE
    queued: deque[tuple[int, str, str]] = field(default_factory=deque)
    lock_next: int = 0
    stalls: deque[float] = field(default_factory=deque)
    rng: random.Random = field(default_factory=lambda: random.Random(7))

    def stall_next(self, calls: int = 1, seconds: float = 2.0) -> None:
        """The next calls are carried out, but their answers come ``seconds`` late: past a client's
        timeout, the classic lost answer (was it saved? it was)."""
        for _ in range(calls):
            self.stalls.append(seconds)

    def fail_next(self, calls: int = 1, status: int = 503, code: str = "SERVER_UNAVAILABLE", message: str = "") -> None:
        for _ in range(calls):
            self.queued.append((status, code, message or f"{code}: injected by the test"))


class SalesforceEmulator:
    """The server. ``daily_limit`` is the org's API allocation; ``page_size`` caps query pages."""

    def __init__(
        self,
        *,
        client_id: str = "3MVG9-synchub-test",
        client_secret: str = "s3cret-client",  # noqa: S107 - the emulated org's test credentials
        username: str = "integration@synchub.test",
        password: str = "pa55word",  # noqa: S107
        security_token: str = "T0KEN",  # noqa: S107
        jwt_public_key: str | None = None,
        daily_limit: int = 15000,
        page_size: int = 2000,
        person_accounts: bool = False,
    ) -> None:
        from sandbox.salesforce.schema import default_schema

        self.org = Org(schema=default_schema(person_accounts=person_accounts))
        self.faults = Faults()
        self.client_id, self.client_secret = client_id, client_secret
        self.username, self.password, self.security_token = username, password, security_token
        self.private_key_pem: str | None = None
        if jwt_public_key is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.private_key_pem = key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ).decode()
            jwt_public_key = (
                key.public_key()
                .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
                .decode()
            )
        self.jwt_public_key = jwt_public_key
        self.daily_limit = daily_limit
        self.api_used = 0
        self.page_size = page_size
        self.sessions: set[str] = set()
        self.token_requests = 0
        self.requests: list[tuple[str, str]] = []  # (method, path) of every REST API call, for tests
        self._locators: dict[str, list[dict[str, Any]]] = {}
        self._locator_ids = itertools.count(1)
        self._jobs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

        self._ca = trustme.CA()
        self._dir = tempfile.TemporaryDirectory(prefix="sfemu-")
        self.ca_bundle = str(Path(self._dir.name) / "ca.pem")
        self._ca.cert_pem.write_to_path(self.ca_bundle)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)

        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: one TLS handshake per client, as with the real API

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, payload = emulator.handle(self.command, self.path, dict(self.headers), body)
                data = (
                    b""
                    if payload is None
                    else (payload if isinstance(payload, bytes) else json.dumps(payload).encode())
                )
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if data:
                    self.send_header("Content-Type", "application/json;charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for the loop's next look: 0.5 s by default, paid by every test's teardown
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    # --- lifecycle and knobs ------------------------------------------------------------------------

    def __enter__(self) -> SalesforceEmulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._dir.cleanup()

    def expire_sessions(self) -> None:
        """Every access token issued so far stops working (401 INVALID_SESSION_ID), as after a
        session timeout or a revoke."""
        with self._lock:
            self.sessions.clear()

    def add_rule(self, obj: str, rule: ValidationRule) -> None:
        self.org.rules.setdefault(obj, []).append(rule)

    # --- dispatch -----------------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(raw_path)
        path, query = parts.path, parse_qs(parts.query)
        if path == "/services/oauth2/token" and method == "POST":
            return self._token(headers, body)
        prefix = f"/services/data/v{API_VERSION}/"
        if not path.startswith("/services/data/v"):
            return 404, {}, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        if not path.startswith(prefix):
            return 404, {}, [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]
        token = headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            if token not in self.sessions:
                return 401, {}, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            if self.api_used >= self.daily_limit:
                return (
                    403,
                    self._limit_header(),
                    [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
                )
            self.api_used += 1
            self.requests.append((method, path))
            fault = self.faults.queued.popleft() if self.faults.queued else None
            if fault is None and self.faults.error_rate and self.faults.rng.random() < self.faults.error_rate:
                fault = (503, "SERVER_UNAVAILABLE", "Server temporarily unavailable")
        if self.faults.latency:
            time.sleep(self.faults.latency)
        limit = self._limit_header()
        if fault is not None:
            return fault[0], limit, [{"message": fault[2], "errorCode": fault[1]}]
        stall = self._pop_stall()
        try:
            status, extra, payload = self._route(method, path.removeprefix(prefix), query, headers, body)
        except SaveError as exc:
            return exc.status, limit, [exc.body()]
        except SoqlError as exc:
            return 400, limit, [{"message": str(exc), "errorCode": exc.code}]
        except (ValueError, KeyError, TypeError) as exc:
            return 400, limit, [{"message": f"JSON_PARSER_ERROR: {exc}", "errorCode": "JSON_PARSER_ERROR"}]
        finally:
            if stall:
                time.sleep(stall)  # carried out already: only the answer is late
        return status, {**limit, **extra}, payload

    def _pop_stall(self) -> float:
        with self._lock:
            return self.faults.stalls.popleft() if self.faults.stalls else 0.0

    def _limit_header(self) -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={self.api_used}/{self.daily_limit}"}

    def _route(
        self, method: str, rest: str, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        seg = [s for s in rest.split("/") if s]
        data = json.loads(body) if body else None
        if seg and seg[0] in ("query", "queryAll"):
            include_deleted = seg[0] == "queryAll"
            if len(seg) == 2:
                return 200, {}, self._more(seg[1], include_deleted)
            soql = (query.get("q") or [""])[0]
            return 200, {}, self._query(soql, include_deleted, headers)
        if seg[:2] == ["composite", "sobjects"]:
            return self._collection(method, seg[2:], query, data)
        if seg[:2] == ["jobs", "query"]:
            return self._bulk_query(method, seg[2:], query, data)
        if seg and seg[0] == "sobjects" and len(seg) >= 2:
            return self._sobject(method, seg[1:], data)
        raise SaveError("NOT_FOUND", "The requested resource does not exist", status=404)

    # --- Bulk API 2.0 query jobs --------------------------------------------------------------------
    # https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_create_job.htm
    # https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_info.htm
    # https://developer.salesforce.com/docs/atlas.en-us.api_asynch.meta/api_asynch/query_get_job_results.htm
    # The result set is taken when the job is created (what the job sees); the first status request
    # answers InProgress, the next JobComplete, so a client must poll. Results are CSV (RFC 4180, LF,
    # comma), null as an empty field, paged by maxRecords with an opaque Sforce-Locator ("null" at the end).

    def _bulk_query(
        self, method: str, seg: list[str], query: dict[str, list[str]], data: Any
    ) -> tuple[int, dict[str, str], Any]:
        if method == "POST" and not seg:
            operation = str((data or {}).get("operation", ""))
            if operation not in ("query", "queryAll"):
                raise SaveError("INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
            soql = str(data.get("query") or "")
            parsed = parse_soql(soql)
            if parsed.subqueries:
                raise SaveError("INVALIDJOB", "InvalidJob : Nested queries aren't supported in Bulk API 2.0 query jobs")
            rows = self.org.query(soql, include_deleted=operation == "queryAll")
            job_id = to_18("750Wz0" + f"{next(self._locator_ids):09d}")
            now = format_datetime(self.org.clock())
            info = {
                "id": job_id, "operation": operation, "object": parsed.obj, "createdById": "005Wz0000000001AAA",
                "createdDate": now, "systemModstamp": now, "state": "UploadComplete", "concurrencyMode": "Parallel",
                "contentType": "CSV", "apiVersion": float(API_VERSION), "lineEnding": "LF", "columnDelimiter": "COMMA",
            }  # fmt: skip
            self._jobs[job_id] = {"info": info, "rows": rows, "fields": list(parsed.fields), "polls": 0}
            return 200, {}, info
        job = self._jobs.get(seg[0]) if seg else None
        if job is None:
            raise SaveError("NOT_FOUND", "The requested resource does not exist", status=404)
        if method == "GET" and len(seg) == 1:
            job["polls"] += 1
            done = job["polls"] > 1
            job["info"]["state"] = "JobComplete" if done else "InProgress"
            extra = {"numberRecordsProcessed": len(job["rows"]) if done else 0, "retries": 0, "totalProcessingTime": 1}
            return 200, {}, {**job["info"], **extra}
        if method == "GET" and seg[1:] == ["results"]:
            if job["info"]["state"] != "JobComplete":
                raise SaveError("INVALIDJOBSTATE", "InvalidJobState : Job is not yet complete")
            start = int((query.get("locator") or ["0"])[0] or 0)
            size = int((query.get("maxRecords") or ["50000"])[0])
            page = job["rows"][start : start + size]
            after = start + size
            locator = str(after) if after < len(job["rows"]) else "null"
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(job["fields"])
            for row in page:
                writer.writerow([_csv_value(row.get(f)) for f in job["fields"]])
            headers = {
                "Content-Type": "text/csv",
                "Sforce-Locator": locator,
                "Sforce-NumberOfRecords": str(len(page)),
            }
            return 200, headers, out.getvalue().encode()
        raise SaveError("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed", status=405)

    # --- sObject resources --------------------------------------------------------------------------

    def _sobject(self, method: str, seg: list[str], data: Any) -> tuple[int, dict[str, str], Any]:
        org, name = self.org, seg[0]
        obj = org.obj(name)
        if len(seg) == 2 and seg[1] == "describe" and method == "GET":
            return 200, {}, obj.describe()
        if len(seg) == 1 and method == "POST":
            rid = org.create(name, _fields(data))
            return 201, {}, {"id": rid, "success": True, "errors": []}
        if len(seg) == 2:
            if method == "GET":
                record = org.live(name, seg[1])
                return 200, {}, {"attributes": _attributes(name, seg[1]), **record}
            if method == "PATCH":
                org.update(name, seg[1], _fields(data))
                return 204, {}, None
            if method == "DELETE":
                org.delete(name, seg[1])
                return 204, {}, None
        if len(seg) == 3 and method == "PATCH":
            rid, created = org.upsert(name, seg[1], seg[2], _fields(data))
            return (201 if created else 200), {}, {"id": rid, "success": True, "errors": [], "created": created}
        raise SaveError("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed", status=405)

    def _collection(
        self, method: str, seg: list[str], query: dict[str, list[str]], data: Any
    ) -> tuple[int, dict[str, str], Any]:
        if method == "DELETE":
            ids = [i for i in (query.get("ids") or [""])[0].split(",") if i]
            all_or_none = (query.get("allOrNone") or ["false"])[0].lower() == "true"
            items: list[Any] = ids
        else:
            items = list(data.get("records") or [])
            all_or_none = bool(data.get("allOrNone", False))
        if len(items) > MAX_COLLECTION:
            raise SaveError(
                "EXCEEDED_ID_LIMIT", "record limit reached. cannot submit more than 200 records into this call"
            )
        org = self.org
        with org.lock:
            snapshot = copy.deepcopy(org.records) if all_or_none else None
            results: list[dict[str, Any]] = []
            for item in items:
                results.append(self._collection_item(method, seg, item))
            if snapshot is not None and not all(r["success"] for r in results):
                org.records = snapshot
                rolled = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the request was using "
                    "AllOrNone header",
                    "fields": [],
                }
                results = [
                    r if not r["success"] else {"id": None, "success": False, "errors": [rolled]} for r in results
                ]
        return 200, {}, results

    def _collection_item(self, method: str, seg: list[str], item: Any) -> dict[str, Any]:
        org = self.org
        try:
            if self.faults.lock_next > 0:
                self.faults.lock_next -= 1
                raise SaveError("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record or 1 records")
            if method == "DELETE":
                name = org.find_object_of(item)
                if name is None:
                    raise SaveError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")
                org.delete(name, item)
                return {"id": item, "success": True, "errors": []}
            name = (item.get("attributes") or {}).get("type")
            if not name:
                raise SaveError("INVALID_TYPE", "Must send a concrete entity type.")
            values = _fields(item)
            if method == "POST":
                return {"id": org.create(name, values), "success": True, "errors": []}
            if method == "PATCH" and not seg:
                rid = values.pop("Id", None)
                if not rid:
                    raise SaveError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
                org.update(name, rid, values)
                return {"id": rid, "success": True, "errors": []}
            if method == "PATCH" and len(seg) == 2:
                ext_field = seg[1]
                ext_value = values.pop(ext_field, None)
                if ext_value in (None, ""):
                    raise SaveError("MISSING_ARGUMENT", f"{ext_field} not specified", [ext_field])
                rid, created = org.upsert(seg[0], ext_field, str(ext_value), values)
                return {"id": rid, "success": True, "errors": [], "created": created}
            raise SaveError("METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed", status=405)
        except SaveError as exc:
            return {"id": None, "success": False, "errors": [exc.body("statusCode")]}

    # --- queries ------------------------------------------------------------------------------------

    def _query(self, soql: str, include_deleted: bool, headers: dict[str, str]) -> dict[str, Any]:
        rows = self.org.query(soql, include_deleted=include_deleted)
        if parse_soql(soql).count:
            # COUNT(): "the size field of the QueryResult returns the number of rows", no records
            # https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_count.htm
            return {"totalSize": rows[0]["expr0"], "done": True, "records": []}
        size = self.page_size
        options = headers.get("Sforce-Query-Options", "")
        m = re.search(r"batchSize=(\d+)", options)
        if m:
            size = min(size, max(200, min(2000, int(m.group(1)))))
        locator = f"01gWz{next(self._locator_ids):010d}"
        self._locators[locator] = rows
        return self._page(locator, 0, size, include_deleted)

    def _more(self, ref: str, include_deleted: bool) -> dict[str, Any]:
        locator, _, offset = ref.rpartition("-")
        if locator not in self._locators:
            raise SaveError("INVALID_QUERY_LOCATOR", "invalid query locator")
        start, size = (int(x) for x in offset.split("_")) if "_" in offset else (int(offset), self.page_size)
        return self._page(locator, start, size, include_deleted)

    def _page(self, locator: str, start: int, size: int, include_deleted: bool) -> dict[str, Any]:
        rows = self._locators[locator]
        page = rows[start : start + size]
        done = start + size >= len(rows)
        out: dict[str, Any] = {"totalSize": len(rows), "done": done, "records": page}
        if not done:
            # "Although the nextRecordsUrl has query in the URL, it still provides the remaining results
            # from the initial QueryAll request" (…/api_rest/resources_queryall.htm): always /query/
            # the size rides along (after "_") only so a custom batchSize survives; Salesforce keeps it server-side
            suffix = f"{start + size}" if size == self.page_size else f"{start + size}_{size}"
            out["nextRecordsUrl"] = f"/services/data/v{API_VERSION}/query/{locator}-{suffix}"
        else:
            self._locators.pop(locator, None)
        return out

    # --- OAuth --------------------------------------------------------------------------------------

    def _token(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        grant = form.get("grant_type", "")
        with self._lock:
            self.token_requests += 1
        if self.faults.latency:
            time.sleep(self.faults.latency)
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            problem = self._check_jwt(form.get("assertion", ""))
        elif grant == "client_credentials":
            problem = None if self._client_ok(form, headers) else ("invalid_client", "invalid client credentials")
        elif grant == "password":
            if not self._client_ok(form, headers):
                problem = ("invalid_client", "invalid client credentials")
            else:
                good = _equal(form.get("username", ""), self.username) & _equal(
                    form.get("password", ""), self.password + self.security_token
                )
                problem = None if good else ("invalid_grant", "authentication failure")
        else:
            problem = ("unsupported_grant_type", "grant type not supported")
        if problem is not None:
            return 400, {}, {"error": problem[0], "error_description": problem[1]}
        token = f"{ORG_ID}!{secrets.token_urlsafe(32)}"
        issued = str(int(time.time() * 1000))
        identity = f"{self.base_url}/id/{ORG_ID}/{USER_ID}"
        signature = base64.b64encode(
            hmac.new(self.client_secret.encode(), (identity + issued).encode(), hashlib.sha256).digest()
        ).decode()
        with self._lock:
            self.sessions.add(token)
        return (
            200,
            {},
            {
                "access_token": token,
                "instance_url": self.base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued,
                "signature": signature,
            },
        )

    def _client_ok(self, form: dict[str, str], headers: dict[str, str]) -> bool:
        cid, secret = form.get("client_id", ""), form.get("client_secret", "")
        basic = headers.get("Authorization", "")
        if basic.startswith("Basic "):
            cid, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
        return _equal(cid, self.client_id) & _equal(secret, self.client_secret)

    def _check_jwt(self, assertion: str) -> tuple[str, str] | None:
        try:
            claims = jwt.decode(
                assertion,
                self.jwt_public_key,
                algorithms=["RS256"],
                audience=self.base_url,
                options={"require": ["iss", "sub", "aud", "exp"]},
            )
        except jwt.ExpiredSignatureError:
            return "invalid_grant", "expired authorization code"
        except jwt.InvalidAudienceError:
            return "invalid_grant", "audience is invalid"
        except jwt.PyJWTError:
            return "invalid_grant", "invalid assertion"
        if not _equal(str(claims["iss"]), self.client_id):
            return "invalid_client_id", "client identifier invalid"
        if claims["sub"] != self.username:
            return "invalid_grant", "user hasn't approved this consumer"
        return None


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _fields(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return {k: v for k, v in data.items() if k != "attributes"}


def _attributes(obj: str, rid: str) -> dict[str, str]:
    return {"type": obj, "url": f"/services/data/v{API_VERSION}/sobjects/{obj}/{rid}"}


def _csv_value(value: Any) -> str:
    """A value as Bulk API 2.0 writes it in CSV: null empty, booleans lower-case, numbers plainly."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
