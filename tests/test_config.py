"""Config loading: a deployment from one TOML file, every mistake reported with file:line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from connectors.memory import MemoryConnector
from core.cli import app
from core.config import ConfigFileError, load_config, parse_duration
from core.connector import secret
from core.deployment import build_pipeline, check_deployment
from workers.runtime import runtime_from_config

ROOT = Path(__file__).resolve().parent.parent
SYNC_MAPPINGS = ROOT / "tests" / "sync" / "mappings"

GOOD = f"""
[hub]
kind = "salesforce"
connector = "memory"
mapping = "{SYNC_MAPPINGS / "crm.yaml"}"
token = "env:TEST_CRM_TOKEN"

[state]
url = "sqlite:///{{db}}"

[retry]
max_attempts = 3
max_age = "2h"

[workers]
flush_window = "250ms"

[spokes.shop]
kind = "shopify"
connector = "memory"
mapping = "{SYNC_MAPPINGS / "shop.yaml"}"
entities = {{ customer = "both", stock_level = "out" }}
poll_every = "5m"
batch_size = 37
rate_limit = {{ calls = 2, per_seconds = "1s", concurrency = 1 }}
webhook_secret = "file:{{secret_file}}"

[spokes.pos]
kind = "pos"
connector = "memory"
mapping = "{SYNC_MAPPINGS / "pos.yaml"}"
entities = {{ customer = "in" }}
"""


def write(tmp_path: Path, text: str) -> Path:
    secret_file = tmp_path / "shop.secret"
    secret_file.write_text("s3cr3t-webhook\n")
    path = tmp_path / "config.toml"
    path.write_text(text.replace("{db}", str(tmp_path / "store.db")).replace("{secret_file}", str(secret_file)))
    return path


def errors_of(path: Path, **env: str) -> list[str]:
    with pytest.raises(ConfigFileError) as info:
        load_config(path, environ=env)
    return [str(i) for i in info.value.issues]


def test_a_good_file_builds_a_working_deployment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={"TEST_CRM_TOKEN": "crm-token-value"})
    assert config.hub_name == "crm"
    assert list(config.spokes) == ["shop", "pos"]
    shop = config.spokes["shop"]
    assert shop.poll_every == 300.0
    assert config.workers.flush_window == 0.25
    assert config.retry.max_age == 7200.0
    settings = shop.connector_settings()
    assert isinstance(settings["webhook_secret"], SecretStr)
    assert secret(settings, "webhook_secret") == "s3cr3t-webhook"
    assert "s3cr3t" not in repr(config)

    runtime = runtime_from_config(config)
    try:
        pipeline = runtime.pipeline
        assert isinstance(pipeline.systems.hub.connector, MemoryConnector)
        assert pipeline.systems.hub.name == "crm"
        assert pipeline.systems.hub.kind == "salesforce"
        assert pipeline.systems.get("shop").flows == {"customer": "both", "stock_level": "out"}
        assert pipeline.systems.get("shop").connector.batch_size == 37  # type: ignore[union-attr]
        assert MemoryConnector.batch_size != 37  # the override is per instance
        assert pipeline.retry.max_attempts == 3
        assert runtime.rate_limit("shop").calls == 2
        assert runtime.rate_limit("shop").concurrency == 1
        assert runtime.poll_every == {("shop", "customer"): 300.0}
        assert runtime.flush_window == 0.25
        # and it syncs: a POS customer reaches the CRM and the shop
        pos = pipeline.systems.get("pos").connector
        assert isinstance(pos, MemoryConnector)
        pos.system.put("customer", {"name": "Ala", "phone": "600 100 200", "card": "L-1"})
        pipeline.poll("pos", "customer")
        pipeline.drain()
        crm = pipeline.systems.hub.connector
        assert isinstance(crm, MemoryConnector)
        assert [r["first_name"] for r in crm.system.live("customer").values()] == ["Ala"]
        shop = pipeline.systems.get("shop").connector
        assert isinstance(shop, MemoryConnector)
        assert len(shop.system.live("customer")) == 1
    finally:
        runtime.close()


def _pragmas(runtime: Any) -> list[tuple[int, int]]:
    """cache_size and mmap_size as two of the store's connections, held at once, report them."""
    engine = runtime.pipeline.store.engine
    held = [engine.raw_connection(), engine.raw_connection()]
    try:
        return [
            (c.execute("PRAGMA cache_size").fetchone()[0], c.execute("PRAGMA mmap_size").fetchone()[0])
            for c in (conn.cursor() for conn in held)
        ]
    finally:
        for conn in held:
            conn.close()


def test_the_sqlite_page_cache_and_memory_map_are_set_from_the_state_section(tmp_path: Path) -> None:
    tuned = GOOD.replace(
        '[state]\nurl = "sqlite:///{db}"',
        '[state]\nurl = "sqlite:///{db}"\nsqlite_cache_mb = 200\nsqlite_mmap_mb = 512',
    )
    assert tuned != GOOD
    runtime = runtime_from_config(load_config(write(tmp_path, tuned), environ={"TEST_CRM_TOKEN": "x"}))
    try:
        # negative cache_size: KiB; mmap_size in bytes — on every connection, not only the first
        assert _pragmas(runtime) == [(-200 * 1024, 512 * 2**20)] * 2
    finally:
        runtime.close()
    runtime = runtime_from_config(load_config(write(tmp_path, GOOD), environ={"TEST_CRM_TOKEN": "x"}))
    try:
        assert _pragmas(runtime) == [(-64 * 1024, 256 * 2**20)] * 2  # the defaults, as documented
    finally:
        runtime.close()


def test_a_negative_memory_map_is_refused_with_its_line(tmp_path: Path) -> None:
    text = GOOD.replace('[state]\nurl = "sqlite:///{db}"', '[state]\nurl = "sqlite:///{db}"\nsqlite_mmap_mb = -1')
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "sqlite_mmap_mb" in t)
    problems = errors_of(write(tmp_path, text), TEST_CRM_TOKEN="x")
    assert any(f"config.toml:{line}: state.sqlite_mmap_mb:" in p for p in problems), problems


def test_unknown_keys_are_reported_with_their_line_and_a_hint(tmp_path: Path) -> None:
    text = GOOD.replace("max_attempts = 3", "max_atempts = 3").replace("[workers]", "[workrs]")
    problems = errors_of(write(tmp_path, text), TEST_CRM_TOKEN="x")
    lines = text.splitlines()
    typo_line = next(i for i, line in enumerate(lines, 1) if "max_atempts" in line)
    assert any(
        f"config.toml:{typo_line}: retry.max_atempts: unknown key (did you mean 'max_attempts'?)" in p for p in problems
    )
    assert any("workrs: unknown key (did you mean 'workers'?)" in p for p in problems)


def test_bad_values_point_at_their_line(tmp_path: Path) -> None:
    text = GOOD.replace('poll_every = "5m"', 'poll_every = "5 minutes"').replace('stock_level = "out"', 'stock = "out"')
    problems = errors_of(write(tmp_path, text), TEST_CRM_TOKEN="x")
    lines = text.splitlines()
    poll_line = next(i for i, line in enumerate(lines, 1) if "poll_every" in line)
    entities_line = next(i for i, line in enumerate(lines, 1) if "entities = {" in line and "stock" in line)
    assert any(
        p.startswith(f"{tmp_path}/config.toml:{poll_line}: spokes.shop.poll_every:")
        and "'5 minutes' is not a duration" in p
        for p in problems
    )
    assert any(
        f":{entities_line}: spokes.shop.entities" in p and "unknown entity 'stock' (did you mean 'stock_level'?)" in p
        for p in problems
    )


def test_missing_required_key_points_at_its_table(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "pos"\n', "")
    problems = errors_of(write(tmp_path, text), TEST_CRM_TOKEN="x")
    header = next(i for i, line in enumerate(text.splitlines(), 1) if line == "[spokes.pos]")
    assert f"{tmp_path}/config.toml:{header}: spokes.pos.kind: required key is missing" in problems


def test_secrets_must_come_from_env_or_file_and_never_show(tmp_path: Path) -> None:
    text = GOOD.replace('token = "env:TEST_CRM_TOKEN"', 'token = "literal-token-123"')
    problems = errors_of(write(tmp_path, text))
    assert any("hub.token: a secret must not be written in the file" in p for p in problems)
    assert not any("literal-token-123" in p for p in problems)


def test_a_missing_environment_variable_is_named(tmp_path: Path) -> None:
    problems = errors_of(write(tmp_path, GOOD))
    line = next(i for i, text_line in enumerate(GOOD.splitlines(), 1) if "TEST_CRM_TOKEN" in text_line)
    assert f"{tmp_path}/config.toml:{line}: hub.token: environment variable TEST_CRM_TOKEN is not set" in problems


def test_a_missing_secret_file_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    (tmp_path / "shop.secret").unlink()
    problems = errors_of(path, TEST_CRM_TOKEN="x")
    assert any("spokes.shop.webhook_secret: cannot read secret file" in p for p in problems)


def test_toml_syntax_errors_carry_the_line(tmp_path: Path) -> None:
    text = GOOD.replace('poll_every = "5m"', "poll_every = 5m")
    problems = errors_of(write(tmp_path, text), TEST_CRM_TOKEN="x")
    line = next(i for i, text_line in enumerate(text.splitlines(), 1) if "poll_every = 5m" in text_line)
    assert len(problems) == 1
    assert problems[0].startswith(f"{tmp_path}/config.toml:{line}: not valid TOML")


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30.0), ("5m", 300.0), ("1.5h", 5400.0), ("250ms", 0.25), ("2d", 172800.0), (7, 7.0)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


def test_deployment_check_finds_mapping_and_connector_problems(tmp_path: Path) -> None:
    text = GOOD.replace('kind = "pos"\nconnector = "memory"', 'kind = "pos"\nconnector = "nosuch"').replace(
        'entities = { customer = "in" }', 'entities = { customer = "in", order = "in" }'
    )
    config = load_config(write(tmp_path, text), environ={"TEST_CRM_TOKEN": "x"})
    problems = [f"{p.system}: {p.message}" for p in check_deployment(config).problems]
    assert any(p.startswith("pos: entity 'order' is synced but") for p in problems)
    assert "pos: no connector for kind 'nosuch'" in problems
    with pytest.raises(Exception, match="no connector for kind 'nosuch'"):
        build_pipeline(config)


def test_cli_config_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    path = write(tmp_path, GOOD)
    monkeypatch.setenv("TEST_CRM_TOKEN", "x")
    ok = runner.invoke(app, ["config", "check", str(path), "--connect"])
    assert ok.exit_code == 0, ok.output
    assert "config ok" in ok.output
    assert "shop" in ok.output

    bad = write(tmp_path, GOOD.replace("batch_size = 37", "batch_size = 0"))
    failed = runner.invoke(app, ["config", "check", str(bad)])
    assert failed.exit_code == 1
    assert "spokes.shop.batch_size" in failed.output


def test_the_operator_commands_open_the_store_with_the_state_tuning(tmp_path: Path, monkeypatch) -> None:
    # `synchub trace` (and its like) on a config file: the store as the workers open it
    from core.cli import _open_store

    tuned = GOOD.replace(
        '[state]\nurl = "sqlite:///{db}"', '[state]\nurl = "sqlite:///{db}"\nsqlite_cache_mb = 96\nsqlite_mmap_mb = 128'
    )
    monkeypatch.setenv("SYNCHUB_CONFIG", str(write(tmp_path, tuned)))
    monkeypatch.setenv("TEST_CRM_TOKEN", "x")
    monkeypatch.delenv("SYNCHUB_STORE_URL", raising=False)
    store = _open_store(None)
    try:
        raw = store.engine.raw_connection()
        try:
            cur = raw.cursor()
            assert (cur.execute("PRAGMA cache_size").fetchone()[0], cur.execute("PRAGMA mmap_size").fetchone()[0]) == (
                -96 * 1024,
                128 * 2**20,
            )
        finally:
            raw.close()
    finally:
        store.close()


def test_how_long_inbox_rows_are_kept_is_read_from_the_state_section(tmp_path: Path) -> None:
    kept = GOOD.replace('[state]\nurl = "sqlite:///{db}"', '[state]\nurl = "sqlite:///{db}"\ninbox_keep = "3d"')
    assert kept != GOOD
    for text, seconds in ((kept, 3 * 86400.0), (GOOD, 7 * 86400.0)):  # the default, as documented
        runtime = runtime_from_config(load_config(write(tmp_path, text), environ={"TEST_CRM_TOKEN": "x"}))
        try:
            assert runtime.inbox_keep == seconds
        finally:
            runtime.close()
    bad = GOOD.replace('[state]\nurl = "sqlite:///{db}"', '[state]\nurl = "sqlite:///{db}"\ninbox_keep = "a week"')
    line = next(i for i, t in enumerate(bad.splitlines(), 1) if "inbox_keep" in t)
    problems = errors_of(write(tmp_path, bad), TEST_CRM_TOKEN="x")
    assert any(f"config.toml:{line}: state.inbox_keep:" in p and "not a duration" in p for p in problems), problems
