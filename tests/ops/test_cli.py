"""The operator's commands, run through the real ``synchub`` app on a real store."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from core.cli import app
from core.sync import operations as ops
from tests.ops import factory
from tests.ops.helpers import OpsDeployment, ops_deployment

runner = CliRunner()


@pytest.fixture
def d(sqlite_store, monkeypatch) -> Iterator[OpsDeployment]:  # type: ignore[no-untyped-def]
    deployment = ops_deployment(sqlite_store)
    monkeypatch.setenv("SYNCHUB_RUNTIME", "tests.ops.factory:runtime")
    monkeypatch.setenv("COLUMNS", "200")
    factory.CURRENT = deployment
    yield deployment
    factory.CURRENT = None


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_status_and_dead_letters_from_the_terminal(d, tmp_path):
    d.shop.system.put("customer", {"firstName": "Ewa", "email": "ewa.at.example.pl"})
    d.pipeline.drain()
    [dead] = ops.list_dead_letters(d.pipeline.store)
    status = run("status")
    assert "shop" in status and "customer" in status and ("degraded" in status or "failing" in status)
    listed = run("deadletters", "list", "--system", "shop")
    assert str(dead.id) in listed and "MappingError" in listed
    shown = run("deadletters", "show", str(dead.id))
    assert "ewa.at.example.pl" in shown and "ingest" in shown
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**dead.payload, "email": "ewa@example.pl"}))
    assert "ingested" in run("deadletters", "replay", str(dead.id), "--edit", str(fixed))
    d.pipeline.drain()
    assert [c["email"] for c in d.crm.system.live("customer").values()] == ["ewa@example.pl"]
    # discarding needs a reason
    d.shop.system.put("customer", {"firstName": "X", "email": "nope"})
    d.pipeline.drain()
    [other] = ops.list_dead_letters(d.pipeline.store)
    assert runner.invoke(app, ["deadletters", "discard", str(other.id)]).exit_code != 0
    assert "1 dead letter(s) discarded" in run("deadletters", "discard", str(other.id), "--reason", "test data")
    assert ops.get_dead_letter(d.pipeline.store, other.id).reason == "test data"
    assert ops.audit_trail(d.pipeline.store)[0].actor.startswith("cli")


def test_conflicts_from_the_terminal(d):
    crm_id = d.crm.system.put("customer", {"first_name": "Ola", "email": "ola@example.pl", "note": "base"})
    d.pipeline.drain()
    [shop_id] = d.shop.system.live("customer")
    d.crm.system.edit("customer", crm_id, note="one")
    d.shop.system.edit("customer", shop_id, note="two")
    d.pipeline.drain()
    [conflict] = ops.list_conflicts(d.pipeline.store)
    listed = run("conflicts", "list")
    assert '"one"' in listed and '"two"' in listed
    assert runner.invoke(app, ["conflicts", "resolve", str(conflict.id)]).exit_code == 2
    run("conflicts", "resolve", str(conflict.id), "--incoming")
    d.pipeline.drain()
    expected = conflict.incoming.value
    assert d.crm.system.get("customer", crm_id)["note"] == expected
    assert d.shop.system.get("customer", shop_id)["note"] == expected
    again = runner.invoke(app, ["conflicts", "resolve", str(conflict.id), "--golden"])
    assert again.exit_code == 1 and "already" in again.output


def test_backfill_shows_progress_and_counts(d):
    for i in range(12):
        d.pos.system.put("customer", {"name": f"P{i}", "phone": f"6001003{i:02d}", "card": f"K{i}"})
    output = run("backfill", "pos", "customer", "--page-size", "5")
    assert "read 12 record(s) in 3 page(s): 12 applied" in output
    assert "ETA" in output
    assert "12 unchanged" in run("backfill", "pos", "customer")
    bad = runner.invoke(app, ["backfill", "crm", "stock_level"])
    assert bad.exit_code == 1 and "does not send" in bad.output
