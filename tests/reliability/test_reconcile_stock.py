"""Reconciling stock levels that a shop only receives (found by the fault storm with the ERP in it).

A real Tryton publishes its stock; the Shopify emulator holds one item per product at the warehouse's
location and receives the levels (``stock_level = "out"``, as config.example.toml has it). After a
sync the shop holds every level the ERP does. A reconciliation of the shop must then find every
level in step and repair nothing. It used to call every one of them "behind" and writes it again, on
every run: core/sync/reconcile.py ``_correct_base`` compares the golden record mapped out with the
level as read, leaf by leaf with lists compared whole, and the shop's ``quantities`` list holds
``on_hand`` beside the ``available`` figure synchub writes, so the two never compare equal.
Harmless for the data (the writes are absolute), but the report was wrong and each scheduled
reconcile cost one write per level. Now compared by the mapping's own native paths.
"""

from __future__ import annotations

from pathlib import Path

from connectors.shopify import ShopifyConnector
from connectors.tryton import TrytonConnector
from core.store.db import Store
from core.sync.pipeline import Pipeline
from core.sync.reconcile import reconcile
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.shopify.emulator import ShopifyEmulator
from sandbox.tryton.erp import Erp
from sandbox.tryton.server import TrytonServer
from tests.tryton.deployment import SalesforceLikeMemory

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
WAREHOUSE = "Magazyn Kraków"


def test_a_reconciliation_of_stock_levels_the_shop_holds_right_repairs_nothing(tmp_path: Path, tryton: TrytonServer):
    erp_user = Erp(tryton)
    with ShopifyEmulator() as shop:
        shop.add_location(WAREHOUSE)
        for code in erp_user.ids["products"]:
            shop.add_item(code, {WAREHOUSE: 0})
        erp = TrytonConnector("erp", tryton.settings())
        shopify = ShopifyConnector("shop", shop.settings())
        systems = Systems(
            hub=System(
                "crm",
                "salesforce",
                load_mapping(MAPPINGS / "salesforce.yaml"),
                {"customer": "both"},
                SalesforceLikeMemory("crm"),
            ),
            spokes={
                "erp": System("erp", "tryton", load_mapping(MAPPINGS / "tryton.yaml"), {"stock_level": "in"}, erp),
                "shop": System(
                    "shop", "shopify", load_mapping(MAPPINGS / "shopify.yaml"), {"stock_level": "out"}, shopify
                ),
            },
        )
        store = Store(f"sqlite:///{tmp_path / 'state.db'}")
        pipeline = Pipeline(store, systems)
        try:
            erp_user.receive("KUBEK-01", 5)
            pipeline.drain()
            # Given the shop holds every level the ERP does (the opening 10, and 15 mugs)
            for code in erp_user.ids["products"]:
                (available,) = [
                    q["quantity"] for q in shop.level(code, WAREHOUSE)["quantities"] if q["name"] == "available"
                ]
                assert available == erp_user.quantity(code), code
            # When the shop's stock is reconciled
            report = reconcile(pipeline, "shop", "stock_level")
            # Then every level is in step and nothing is written again
            assert report.scanned == len(erp_user.ids["products"])
            assert (report.in_step, report.behind, report.repaired) == (report.scanned, 0, 0), report
        finally:
            store.close()
            erp.close()
            shopify.close()
            erp_user.close()
