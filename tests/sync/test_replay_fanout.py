"""Replaying a fan-out dead letter: the golden record could not be mapped for one system; once the
mapping is fixed (and the process restarted with it), replay sends the record's current values."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from connectors.memory import MemoryConnector
from core.store.db import Store
from core.store.schema import dead_letters
from core.sync.pipeline import Pipeline
from core.sync.replay import open_dead_letters, replay
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from tests.sync.helpers import MAPPINGS, Clock

SHOP = (MAPPINGS / "shop.yaml").read_text()
CITY = "{canonical: addresses.default.city, native: address.city, owner: newest}"


def shop_mapping(tmp_path: Path, table: str) -> Path:
    path = tmp_path / f"shop-{abs(hash(table))}.yaml"
    path.write_text(
        SHOP.replace(CITY, f"{{canonical: addresses.default.city, native: address.city, transform: 'map({table})'}}")
    )
    return path


def pipeline(store: Store, crm: MemoryConnector, shop: MemoryConnector, shop_yaml: Path, clock: Clock) -> Pipeline:
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "both"}, crm),
        spokes={"shop": System("shop", "shopify", load_mapping(shop_yaml), {"customer": "both"}, shop)},
    )
    return Pipeline(store, systems, clock=clock)


def test_a_fanout_dead_letter_replays_once_the_mapping_is_fixed(store: Store, tmp_path: Path) -> None:
    crm, shop, clock = MemoryConnector("crm"), MemoryConnector("shop"), Clock()
    broken = pipeline(store, crm, shop, shop_mapping(tmp_path, '{"Warsaw": "Warszawa"}'), clock)
    crm.system.put("customer", {"first_name": "Ola", "email": "ola@example.pl", "city": "Kraków"})
    broken.poll("crm", "customer")
    broken.drain()
    assert shop.system.live("customer") == {}
    [dl] = open_dead_letters(broken, system="shop")
    with store.begin() as conn:
        row = conn.execute(select(dead_letters).where(dead_letters.c.id == dl)).one()
    assert row.stage == "fanout"
    assert "Kraków" in row.error

    # replayed with the same mapping: still fails, stays open, nothing new recorded
    assert [r.outcome for r in replay(broken, [dl])] == ["failed"]
    with store.begin() as conn:
        assert conn.execute(select(func.count()).select_from(dead_letters)).scalar() == 1
    assert open_dead_letters(broken, system="shop") == [dl]

    # the integrator adds the missing entry; the restarted process replays
    fixed = pipeline(store, crm, shop, shop_mapping(tmp_path, '{"Warsaw": "Warszawa", "Cracow": "Kraków"}'), clock)
    assert [r.outcome for r in replay(fixed, [dl])] == ["refanned"]
    fixed.drain()
    [record] = shop.system.live("customer").values()
    assert record["address"]["city"] == "Cracow"
    assert record["email"] == "ola@example.pl"
    assert open_dead_letters(fixed) == []
    assert [r.outcome for r in replay(fixed, [dl])] == ["not_open"]
