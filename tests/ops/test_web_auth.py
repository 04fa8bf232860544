"""Who may do what: the bind rule, sessions and CSRF on every action, credentials, and webhooks that
answer to their signature only."""

from __future__ import annotations

import base64
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from core.errors import ConfigError
from core.store.schema import inbox
from core.sync import operations as ops
from core.web import create_app
from core.web.auth import Credentials, check_bind, credentials_from_env, hash_secret, verify_secret
from core.web.server import ServerThread
from tests.ops.helpers import WEBHOOK_SECRET, ops_deployment, sign, webhook_body

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "dashboard-token-0123456789"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def failed_record(d) -> int:  # type: ignore[no-untyped-def]
    d.shop.system.put("customer", {"firstName": "A", "email": "not-an-email"})
    d.pipeline.drain()
    [dead] = ops.list_dead_letters(d.pipeline.store)
    return dead.id


def test_the_dashboard_refuses_a_non_loopback_bind_without_credentials(sqlite_store):
    d = ops_deployment(sqlite_store)
    with pytest.raises(ConfigError, match="refusing to serve"):
        ServerThread(create_app(d.pipeline), host="0.0.0.0")
    with pytest.raises(ConfigError):
        check_bind("192.168.1.10", None)
    check_bind("10.0.0.5", Credentials.token(TOKEN))  # a credential makes it acceptable
    check_bind("127.0.0.1", None)


def test_synchub_api_refuses_a_public_bind_without_credentials(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCHUB_API_")}
    env |= {"SYNCHUB_RUNTIME": "tests.ops.factory:runtime", "SYNCHUB_STORE_URL": f"sqlite:///{tmp_path / 's.db'}"}
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "synchub"), "api", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert "refusing to serve" in proc.stderr + proc.stdout


def test_actions_need_a_valid_session_and_csrf_token(sqlite_store):
    d = ops_deployment(sqlite_store)
    dl_id = failed_record(d)
    app = create_app(d.pipeline)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # no session at all
        r = client.post("/deadletters/replay", data={"ids": str(dl_id), "csrf": "x"}, follow_redirects=False)
        assert r.status_code == 403
        page = client.get(f"/deadletters/{dl_id}")
        assert page.status_code == 200
        token = csrf_of(page.text)
        # a session, but no token / a wrong token
        assert client.post("/deadletters/replay", data={"ids": str(dl_id)}).status_code == 403
        assert client.post("/deadletters/replay", data={"ids": str(dl_id), "csrf": token + "x"}).status_code == 403
        # a forged session cookie with a token of the forger's choosing
        forged = base64.urlsafe_b64encode(b'{"u":"local","c":"mine","e":9999999999}').decode().rstrip("=") + ".sig"
        with TestClient(app, base_url="http://127.0.0.1", cookies={"synchub_session": forged}) as other:
            assert other.post("/deadletters/replay", data={"ids": str(dl_id), "csrf": "mine"}).status_code == 403
        # another app's (another key's) session is not valid here
        assert ops.get_dead_letter(d.pipeline.store, dl_id).status == "open"
        # the real session and its token: done
        r = client.post(
            "/deadletters/discard", data={"ids": str(dl_id), "csrf": token, "reason": "junk"}, follow_redirects=False
        )
        assert r.status_code == 303
        assert ops.get_dead_letter(d.pipeline.store, dl_id).status == "discarded"


def test_with_a_credential_pages_need_a_login(sqlite_store):
    d = ops_deployment(sqlite_store)
    dl_id = failed_record(d)
    app = create_app(d.pipeline, credentials=Credentials.token(TOKEN))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        r = client.get("/deadletters", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
        assert client.get("/metrics").status_code == 401
        login = client.get("/login")
        token = csrf_of(login.text)
        wrong = client.post("/login", data={"csrf": token, "secret": "nope"}, follow_redirects=False)
        assert "wrong" in wrong.headers["location"]
        # an anonymous session cannot act either, even with its CSRF token
        assert client.post("/deadletters/replay", data={"ids": str(dl_id), "csrf": token}).status_code == 403
        ok = client.post(
            "/login", data={"csrf": token, "secret": TOKEN, "next": "/deadletters"}, follow_redirects=False
        )
        assert ok.status_code == 303 and ok.headers["location"] == "/deadletters"
        page = client.get("/deadletters")
        assert page.status_code == 200 and f"#{dl_id}" in page.text
        fresh = csrf_of(page.text)
        assert fresh != token  # a login gets a new session and token
        r = client.post("/deadletters/replay", data={"ids": str(dl_id), "csrf": fresh}, follow_redirects=False)
        assert r.status_code == 303
        assert ops.audit_trail(d.pipeline.store)[0].actor == "token"
    with TestClient(app, base_url="http://127.0.0.1") as scraper:
        assert scraper.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert scraper.get("/metrics", headers={"Authorization": "Bearer wrong-token-000000"}).status_code == 401


def test_credentials_are_kept_hashed():
    creds = Credentials.basic("ola", "correct horse battery")
    assert "correct horse" not in repr(creds) and creds.secret_hash.startswith("scrypt$")
    assert creds.verify("ola", "correct horse battery")
    assert not creds.verify("ola", "correct horse batterY")
    assert not creds.verify("ala", "correct horse battery")
    hashed = hash_secret("some-long-token-value")
    assert verify_secret("some-long-token-value", hashed) and not verify_secret("x", hashed)
    from_env = credentials_from_env({"SYNCHUB_API_TOKEN_HASH": hashed})
    assert from_env is not None and from_env.verify(None, "some-long-token-value")
    assert credentials_from_env({}) is None
    with pytest.raises(ConfigError):
        Credentials.token("short")


def test_webhooks_answer_to_their_signature_only(sqlite_store):
    d = ops_deployment(sqlite_store)
    accepted: list[list[int]] = []
    app = create_app(
        d.pipeline, credentials=Credentials.token(TOKEN), on_accepted=accepted.append, max_webhook_bytes=4096
    )

    def inbox_rows() -> int:
        with d.pipeline.store.inbox.read() as conn:
            return int(conn.execute(select(func.count()).select_from(inbox)).scalar())

    body = webhook_body("ev-1", {"id": "77", "firstName": "Iza", "email": "iza@example.pl"})
    with TestClient(app, base_url="http://127.0.0.1") as client:
        # no session, no CSRF token: a valid signature is all a webhook needs
        r = client.post("/webhooks/shop", content=body, headers={"X-Signature": sign(body)})
        assert r.status_code == 202 and r.json() == {"accepted": 1, "duplicates": 0}
        assert len(accepted) == 1 and len(accepted[0]) == 1
        again = client.post("/webhooks/shop", content=body, headers={"X-Signature": sign(body)})
        assert again.json() == {"accepted": 0, "duplicates": 1}
        # a wrong signature: its status, a short message, nothing stored
        bad = client.post("/webhooks/shop", content=body, headers={"X-Signature": sign(body, "other-secret")})
        assert bad.status_code == 401 and bad.json() == {"error": "signature mismatch"}
        big = b"{" + b" " * 5000 + b"}"
        assert client.post("/webhooks/shop", content=big, headers={"X-Signature": sign(big)}).status_code == 413
        assert client.post("/webhooks/nosuch", content=body).status_code == 404
        assert client.post("/webhooks/crm", content=body).status_code == 404  # memory CRM takes no webhooks
    assert inbox_rows() == 1
    d.pipeline.drain()
    assert [c["email"] for c in d.crm.system.live("customer").values()] == ["iza@example.pl"]
    assert WEBHOOK_SECRET  # the helper's secret signs the good ones


def test_health_and_readiness(sqlite_store):
    d = ops_deployment(sqlite_store)

    def broker_down() -> None:
        raise ConnectionError("redis unreachable")

    with TestClient(create_app(d.pipeline), base_url="http://127.0.0.1") as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ok", "store": "ok"}
    with TestClient(create_app(d.pipeline, ready_checks={"broker": broker_down}), base_url="http://127.0.0.1") as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["broker"].startswith("unreachable")


def test_readiness_reads_without_the_write_lock_and_covers_the_inbox(sqlite_store):
    from tests.sync.test_store_locking import hammer

    d = ops_deployment(sqlite_store)
    with TestClient(create_app(d.pipeline), base_url="http://127.0.0.1") as client:
        # While another process holds the store's write lock, the probe still answers ready
        proc = hammer(Path(str(sqlite_store.engine.url.database)), seconds=30, hold=30, gap=0)
        try:
            assert client.get("/readyz").json() == {"status": "ok", "store": "ok"}
            assert proc.poll() is None  # still holding it
        finally:
            proc.kill()
            proc.wait()
        # and once webhooks could not land (the inbox file lost its table), it says so
        raw = sqlite3.connect(str(sqlite_store.inbox.engine.url.database))
        raw.execute("DROP TABLE inbox")
        raw.commit()
        raw.close()
        r = client.get("/readyz")
        assert r.status_code == 503 and r.json()["store"].startswith("unreachable")
