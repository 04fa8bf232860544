"""A tiny JSON-over-HTTP target system on 127.0.0.1, and the connector that talks to it.

It lives outside the worker processes, so what it holds survives a ``kill -9`` of any of them:
tests of the workers count on it to tell *exactly once in effect* (one record per canonical id,
with the last values) from *at least once* (``writes`` logs every write, retries included).

API: ``POST /batch/<entity>`` with ``{"records": [{"canonical_id", "native_id", "op", "payload"}]}``
answers ``{"results": [{"id": …} | {"status": 400, "error": "…"}]}``; the whole call may answer
``429`` with ``Retry-After`` (``throttle``), and every call takes ``latency`` seconds.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import httpx

from core.connector import ChangePage, Connector, RateLimit, WriteRequest, WriteResult
from core.errors import RateLimited, RecordRejected, TransientError

Rule = Callable[[dict[str, Any]], tuple[int, str] | None]


@dataclass
class TargetState:
    records: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # entity → canonical id → record
    writes: list[tuple[str, str, float]] = field(default_factory=list)  # (entity, canonical id, time) per write
    calls: int = 0
    throttled: list[float] = field(default_factory=list)  # times a call was answered 429
    throttle_left: int = 0
    retry_after: float = 1.0
    reject: Rule | None = None
    hold_replies: bool = False  # apply each batch, then keep the caller waiting for its answer
    held: int = 0  # batches applied whose answer is being held back
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    lock: threading.Lock = field(default_factory=threading.Lock)


class HttpTarget:
    """The server: ``with HttpTarget(latency=0.02) as t: t.url …``."""

    def __init__(self, *, latency: float = 0.0) -> None:
        self.latency = latency
        self.state = TargetState()
        target = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                status, headers, answer = target.handle(self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # shutdown() waits for the loop's next look: 0.5 s by default, paid by every test's teardown
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def __enter__(self) -> HttpTarget:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def throttle(self, calls: int, retry_after: float) -> None:
        """Answer the next ``calls`` calls with 429 and ``Retry-After: retry_after``."""
        with self.state.lock:
            self.state.throttle_left = calls
            self.state.retry_after = retry_after

    def hold_replies(self, on: bool) -> None:
        """While on, each batch is applied and its answer held back: a caller killed now has written
        records it never heard about — the exact middle of a batch."""
        with self.state.lock:
            self.state.hold_replies = on

    def live(self, entity: str) -> dict[str, dict[str, Any]]:
        with self.state.lock:
            return {cid: dict(r) for cid, r in self.state.records.get(entity, {}).items()}

    def handle(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
        time.sleep(self.latency)
        s = self.state
        with s.lock:
            s.calls += 1
            if s.throttle_left > 0:
                s.throttle_left -= 1
                s.throttled.append(time.time())
                return 429, {"Retry-After": f"{s.retry_after:g}"}, {"error": "rate limit exceeded"}
            if not path.startswith("/batch/"):
                return 404, {}, {"error": "no such path"}
            entity = path.removeprefix("/batch/")
            table = s.records.setdefault(entity, {})
            results: list[dict[str, Any]] = []
            for req in body.get("records", []):
                cid, payload = req["canonical_id"], req.get("payload") or {}
                refused = s.reject(payload) if s.reject is not None else None
                if refused is not None:
                    results.append({"status": refused[0], "error": refused[1]})
                    continue
                s.writes.append((entity, cid, time.time()))
                if req.get("op", "upsert") != "upsert":
                    gone = table.pop(cid, None)
                    results.append({"id": gone["id"] if gone else req.get("native_id")})
                    continue
                existing = table.get(cid)
                nid = existing["id"] if existing else str(next(s.ids))
                table[cid] = {**(existing or {}), **{k: v for k, v in payload.items() if k != "id"}, "id": nid}
                results.append({"id": nid})
            hold = s.hold_replies
            if hold:
                s.held += 1
        while hold and self.state.hold_replies:  # the batch is applied; the caller has no answer yet
            time.sleep(0.01)
        return 200, {}, {"results": results}


class HttpTargetConnector(Connector):
    """The client of ``HttpTarget``: a batch upsert by canonical id; write-only (reads nothing)."""

    kind: ClassVar[str] = "http_target"
    batch_size: ClassVar[int] = 50
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=1000, per_seconds=1.0, concurrency=8)

    def __init__(self, name: str, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, settings)
        self.client = httpx.Client(base_url=self.settings["url"], timeout=10.0)

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        return ChangePage([], cursor)

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        self.calls += 1
        body = {
            "records": [
                {"canonical_id": r.canonical_id, "native_id": r.native_id, "op": r.op, "payload": r.payload}
                for r in batch
            ]
        }
        try:
            response = self.client.post(f"/batch/{entity}", json=body)
        except httpx.TransportError as exc:
            raise TransientError(f"{self.name}: {exc}") from exc
        if response.status_code == 429:
            raise RateLimited(f"{self.name}: throttled", retry_after=float(response.headers.get("Retry-After", "1")))
        if response.status_code >= 500:
            raise TransientError(f"{self.name}: HTTP {response.status_code}")
        if response.status_code != 200:
            raise RecordRejected(f"{self.name}: HTTP {response.status_code}: {response.text}")
        out: list[WriteResult] = []
        for item in response.json()["results"]:
            if "id" in item:
                out.append(WriteResult(native_id=item["id"]))
            elif int(item["status"]) in (429,) or int(item["status"]) >= 500:
                out.append(WriteResult(error=TransientError(item["error"])))
            else:
                out.append(WriteResult(error=RecordRejected(item["error"], code=str(item["status"]))))
        return out

    def close(self) -> None:
        self.client.close()
