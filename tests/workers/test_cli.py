"""``synchub replay`` and the worker commands' presence (the long-running ones are exercised as
processes in test_redis_workers.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.errors import RecordRejected
from core.store.schema import dead_letters, outbox
from tests.sync.helpers import Deployment, deployment
from workers.cli import app
from workers.runtime import Runtime, install


@pytest.fixture
def d(sqlite_store, monkeypatch) -> Iterator[Deployment]:
    monkeypatch.delenv("SYNCHUB_BROKER_URL", raising=False)
    dep = deployment(sqlite_store)
    install(Runtime(dep.pipeline))
    yield dep
    install(None)


def test_replay_puts_the_open_dead_letters_of_a_system_back_on_their_way(d: Deployment):
    # Given a CRM change the shop refused
    d.crm.system.put("customer", {"first_name": "Ann", "last_name": "Nowak", "email": "ann@example.pl"})
    d.pipeline.poll("crm", "customer")
    with d.pipeline.store.begin() as conn:
        cid = conn.execute(select(outbox.c.canonical_id).where(outbox.c.system == "shop")).scalar_one()
    d.shop.fail[cid] = [RecordRejected("email taken", code="TAKEN")]
    d.pipeline.flush("shop")
    # When `synchub replay --system shop` runs
    result = CliRunner().invoke(app, ["replay", "--system", "shop"])
    # Then it says what it did, and the next flush writes the change
    assert result.exit_code == 0, result.output
    assert "requeued" in result.output and "1 dead letter(s) replayed" in result.output
    assert d.pipeline.flush("shop").written == 1
    with d.pipeline.store.begin() as conn:
        assert conn.execute(select(dead_letters.c.status)).scalar_one() == "replayed"


def test_replay_of_another_system_touches_nothing(d: Deployment):
    result = CliRunner().invoke(app, ["replay", "--system", "erp"])
    assert result.exit_code == 0 and "0 dead letter(s) replayed" in result.output


def test_reconcile_reports_and_repairs_drift(d: Deployment):
    # Given a shop customer in step with the CRM, then edited in place where no change is announced
    nid = d.shop.system.put("customer", {"firstName": "Iga", "lastName": "Sowa", "email": "iga@example.pl"})
    d.pipeline.drain()
    d.shop.system.table("customer")[nid].data["lastName"] = "Sowa-Nowak"
    # When a dry run, then a real run, of `synchub reconcile shop customer`
    dry = CliRunner().invoke(app, ["reconcile", "shop", "customer", "--dry-run"])
    real = CliRunner().invoke(app, ["reconcile", "shop", "customer"])
    # Then both name the drifted record; only the real run repairs it
    assert dry.exit_code == 0, dry.output
    assert "would repair: 0 new, 1 drifted" in dry.output and f"drifted: {nid}" in dry.output
    assert real.exit_code == 0, real.output
    assert "repaired: 0 new, 1 drifted" in real.output
    d.pipeline.drain()
    assert [r["last_name"] for r in d.crm.system.live("customer").values()] == ["Sowa-Nowak"]


@pytest.mark.parametrize("command", ["worker", "scheduler", "run", "replay", "reconcile"])
def test_the_worker_commands_are_there(command: str):
    result = CliRunner().invoke(app, [command, "--help"])
    assert result.exit_code == 0, result.output
