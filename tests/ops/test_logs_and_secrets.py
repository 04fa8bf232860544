"""Logs and pages never show a configured secret, even when a system's error message carries one;
personal data is masked at INFO; one trace id follows a change from its webhook to its writes."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from pydantic import SecretStr
from sqlalchemy import select

import tests.conftest
from core.logging import configure
from core.store.db import Store
from core.store.schema import dead_letters, outbox
from core.web import create_app
from core.web.server import ServerThread
from tests.ops.helpers import API_TOKEN, BLOCKED_DOMAIN, WEBHOOK_SECRET, ops_deployment, sign, webhook_body

CRM_PASSWORD = "crm-Passw0rd-never-shown"


def _restore() -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_synchub", False):
            root.removeHandler(handler)
    root.setLevel(logging.WARNING)
    structlog.reset_defaults()
    tests.conftest._quiet_logs()


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    yield io.StringIO()
    _restore()


def lines(buf: io.StringIO) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in buf.getvalue().splitlines() if line.strip()]


def test_no_secret_in_any_log_line_or_page_during_a_sync_with_failures(tmp_path: Path, logs: io.StringIO):
    configure(json=True, level="DEBUG", stream=logs)  # DEBUG: the most that is ever logged
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    d = ops_deployment(store)
    d.crm.settings["password"] = SecretStr(CRM_PASSWORD)
    server = ServerThread(create_app(d.pipeline)).start()
    pages: dict[str, str] = {}
    try:
        with httpx.Client(base_url=server.url) as client:
            # Given webhooks: good ones, one for a customer the shop will refuse, one badly signed
            for i, email in enumerate(["ala@example.pl", f"bob@{BLOCKED_DOMAIN}", "no-at-sign"]):
                body = webhook_body(f"ev-{i}", {"id": f"s{i}", "firstName": "N", "email": email})
                assert (
                    client.post("/webhooks/shop", content=body, headers={"X-Signature": sign(body)}).status_code == 202
                )
            bad = webhook_body("ev-x", {"id": "sx", "email": "x@example.pl"})
            assert client.post("/webhooks/shop", content=bad, headers={"X-Signature": "00"}).status_code == 401
            d.crm.system.put("customer", {"first_name": "Cy", "email": f"cy@{BLOCKED_DOMAIN}"})
            # When the whole sync runs, with its failures
            d.pipeline.drain()
            # and careless code logs settings and a URL with the token in it
            structlog.get_logger("careless").info("connecting", settings=d.shop.settings, crm=d.crm.settings)
            logging.getLogger("httpx").warning("GET https://shop.example/x?access_token=%s -> 500", API_TOKEN)
            # and an operator looks at every page
            with store.begin() as conn:
                dl_ids = [r[0] for r in conn.execute(select(dead_letters.c.id))]
            paths = ["/", "/overview.fragment", "/api/overview", "/deadletters", "/deadletters?status=", "/conflicts"]
            paths += [f"/deadletters/{i}" for i in dl_ids]
            paths += ["/trace?entity=customer&q=ala%40example.pl", "/audit", "/metrics", "/readyz"]
            for path in paths:
                r = client.get(path)
                assert r.status_code == 200, path
                pages[path] = r.text
    finally:
        server.stop()
        store.close()
    logged = logs.getvalue()
    # the test has teeth: the shop's error message carried the token; it was stored redacted ...
    with store.begin() as conn:
        stored = [json.dumps(list(r), default=str) for r in conn.execute(select(dead_letters))]
        stored += [json.dumps(list(r), default=str) for r in conn.execute(select(outbox))]
    assert any("**********" in row for row in stored)
    assert len(dl_ids) >= 3  # the shop refused a write; an e-mail could not be mapped; a forged webhook
    # ... and so shown on its page and logged redacted
    assert any("**********" in pages[f"/deadletters/{i}"] for i in dl_ids)
    assert "access_token=**********" in logged
    assert "webhook.accepted" in logged and "dead_letter" in logged and "GET /deadletters" in logged
    # Then no secret appears anywhere
    for value in (API_TOKEN, WEBHOOK_SECRET, CRM_PASSWORD):
        assert value not in logged
        for row in stored:
            assert value not in row
        for path, text in pages.items():
            assert value not in text, path


def test_personal_data_is_masked_at_info_and_one_trace_id_follows_a_change(tmp_path: Path, logs: io.StringIO):
    configure(json=True, level="INFO", stream=logs)
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    d = ops_deployment(store)
    app = create_app(d.pipeline)
    server = ServerThread(app).start()
    try:
        body = webhook_body("ev-1", {"id": "s1", "firstName": "Zofia", "email": "zofia.nowak@example.pl"})
        with httpx.Client(base_url=server.url) as client:
            assert client.post("/webhooks/shop", content=body, headers={"X-Signature": sign(body)}).status_code == 202
            structlog.get_logger("t").info(
                "customer", email="zofia.nowak@example.pl", phone="+48600100200", name="Zofia"
            )
            d.pipeline.drain()
            client.get("/trace", params={"entity": "customer", "q": "zofia.nowak@example.pl"})
    finally:
        server.stop()
        store.close()
    logged = logs.getvalue()
    assert "zofia.nowak@example.pl" not in logged and "+48600100200" not in logged and "Zofia" not in logged
    assert "z***@e***.pl" in logged
    events = lines(logs)
    [accepted] = [e for e in events if e["event"] == "webhook.accepted"]
    trace_id = accepted["trace_id"]
    assert any(e["event"] == "ingest" and e.get("trace_id") == trace_id for e in events)
    writes = [e for e in events if e["event"] == "write" and trace_id in e.get("trace_ids", [])]
    assert [w["system"] for w in writes] == ["crm"]
