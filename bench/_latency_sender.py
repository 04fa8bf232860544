"""The latency bench's sender: Shopify's side, in its own process.

Posts signed ``customers/create`` webhooks to URL at RATE per second for SECONDS, each on time
whatever the answers before it took (a pool of threads, so a slow answer delays no later send),
and writes as JSON: when each was sent (``time.monotonic()``, comparable across processes on one
machine), how long each acknowledgement took (by event id), and how long the sending took. In its own process
so that neither the web app's nor the emulators' work delays a send or its clock.

    python bench/_latency_sender.py URL SECRET RATE SECONDS OUT.json
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx


def main() -> None:
    url, secret, rate, seconds, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    total = int(rate * seconds)
    sent_at: dict[str, float] = {}
    acks: dict[str, float] = {}  # by event id
    failures: list[str] = []
    lock = threading.Lock()
    client = httpx.Client(timeout=30, limits=httpx.Limits(max_connections=64))

    def send(i: int) -> None:
        email, event = f"lat{i}@example.pl", f"lat-{i}"
        body = json.dumps(
            {
                "id": 9_000_000 + i,
                "email": email,
                "first_name": f"Klient{i}",
                "last_name": "Testowy",
                "created_at": "2026-11-20T10:00:00+01:00",
                "updated_at": datetime.now(UTC).isoformat(),
            }
        ).encode()
        digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": "customers/create",
            "X-Shopify-Event-Id": event,
            "X-Shopify-Hmac-Sha256": digest,
        }
        t0 = time.monotonic()
        try:
            answer = client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            with lock:
                failures.append(f"{email}: {type(exc).__name__}")
            return
        took = time.monotonic() - t0
        with lock:
            sent_at[email] = t0
            acks[event] = took
            if answer.status_code != 202:
                failures.append(f"{email}: {answer.status_code} {answer.text[:200]}")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=32) as pool:
        for i in range(total):
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            pool.submit(send, i)
        send_seconds = time.monotonic() - started
    client.close()
    Path(out).write_text(
        json.dumps({"sent_at": sent_at, "acks": acks, "send_seconds": send_seconds, "failures": failures})
    )


if __name__ == "__main__":
    main()
