"""A composite identity key (``sku+location``): identifying only together, never part by part."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from connectors.memory import MemoryConnector
from core.store.db import Store
from core.store.schema import golden
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import check_text, load_mapping

LEVELS = """
system: {system}
entities:
  stock_level:
    native: Level
    id: id
    identity: [{identity}]
    fields:
      - {{canonical: sku, native: sku}}
      - {{canonical: location, native: where}}
      - {{canonical: available, native: qty, transform: decimal}}
"""


def levels(tmp_path: Path, system: str, identity: str) -> Path:
    path = tmp_path / f"{system}.yaml"
    path.write_text(LEVELS.format(system=system, identity=identity))
    return path


def count(store: Store) -> int:
    with store.begin() as conn:
        return int(conn.execute(select(func.count()).select_from(golden)).scalar())


def test_levels_join_only_when_sku_and_location_both_match(store: Store, tmp_path: Path) -> None:
    erp, shop = MemoryConnector("erp"), MemoryConnector("shop")
    systems = Systems(
        hub=System(
            "erp", "tryton", load_mapping(levels(tmp_path, "tryton", "sku+location")), {"stock_level": "in"}, erp
        ),
        spokes={
            "shop": System(
                "shop",
                "shopify",
                load_mapping(levels(tmp_path, "shopify", "sku+location")),
                {"stock_level": "in"},
                shop,
            )
        },
    )
    pipeline = Pipeline(store, systems)
    # two items in one warehouse, one item in two warehouses: four different levels
    for sku, where in [("A", "WAW"), ("B", "WAW"), ("A", "KRA")]:
        erp.system.put("stock_level", {"sku": sku, "where": where, "qty": "5"})
    pipeline.poll("erp", "stock_level")
    assert count(store) == 3  # "WAW" alone or "A" alone identifies nothing
    # the shop's level of A at WAW is the same real-world level: joined, not a fourth record
    shop.system.put("stock_level", {"sku": "A", "where": "WAW", "qty": "5"})
    shop.system.put("stock_level", {"sku": "C", "where": "WAW", "qty": "1"})
    pipeline.poll("shop", "stock_level")
    assert count(store) == 4


def test_a_composite_key_names_canonical_paths() -> None:
    _, issues = check_text(LEVELS.format(system="shopify", identity="sku+locaton"), "m.yaml")
    assert len(issues) == 1 and "locaton" in issues[0].message and "location" in (issues[0].hint or "")
