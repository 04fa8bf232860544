"""The locker flow on the emulators end to end: Shopify → hub → InPost → hub → Shopify.

The same deployment as test_flow.py, with the shop being the Shopify emulator behind the real
Shopify connector: the order is placed in the shop's admin, the shipment is created in ShipX, and
the tracking number comes back to the shop as a fulfilment on the order.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.inpost import InPostConnector
from connectors.shopify import ShopifyConnector
from core.store.db import Store
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.inpost import ShipXEmulator
from sandbox.shopify.emulator import ShopifyEmulator
from tests.inpost.deployment import MAPPINGS, ORGANIZATION, TOKEN, CrmMemory, inpost_settings


@pytest.fixture
def shipx() -> Iterator[ShipXEmulator]:
    with ShipXEmulator(token=TOKEN, organization_id=ORGANIZATION) as emulator:
        yield emulator


@pytest.fixture
def shop() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(restore_rate=2000.0) as emulator:
        yield emulator


def test_a_shopify_locker_order_ships_once_and_the_shop_gets_the_tracking_number(
    sqlite_store: Store, shop: ShopifyEmulator, shipx: ShipXEmulator, tmp_path: Path
):
    crm = CrmMemory("crm")
    shopify = ShopifyConnector("shop", shop.settings())
    inpost = InPostConnector("inpost", inpost_settings(shipx))
    systems = Systems(
        hub=System(
            "crm",
            "salesforce",
            load_mapping(MAPPINGS / "salesforce.yaml"),
            {"customer": "both", "order": "both", "shipment": "both", "touchpoint": "both"},
            crm,
        ),
        spokes={
            "shop": System(
                "shop",
                "shopify",
                load_mapping(MAPPINGS / "shopify.yaml"),
                {"customer": "in", "order": "in", "shipment": "out"},
                shopify,
            ),
            "inpost": System(
                "inpost",
                "inpost",
                load_mapping(MAPPINGS / "inpost.yaml"),
                {"order": "out", "shipment": "in", "touchpoint": "in"},
                inpost,
            ),
        },
    )
    pipeline = Pipeline(sqlite_store, systems)
    try:
        # Given a customer who orders in the shop for pickup at Paczkomat KRA010
        customer = shop.add_customer(
            email="anna.nowak@example.pl", firstName="Anna", lastName="Nowak", phone="+48600100200"
        )
        order = shop.add_order(
            lines=[{"sku": "KUB-0001", "price": "39.90", "quantity": 2}],
            customer=customer,
            email="anna.nowak@example.pl",
            phone="+48600100200",
            customAttributes=[{"key": "inpost_point", "value": "KRA010"}],
            shippingLine={
                "title": "Paczkomat InPost 24/7",
                "code": "inpost_locker_standard",
                "source": "inpost",
                "originalPriceSet": {"shopMoney": {"amount": "12.99", "currencyCode": "PLN"}},
            },
        )
        # When everything syncs
        pipeline.drain()
        # Then InPost holds exactly one shipment to KRA010 for the order
        [shipment] = shipx.shipments()
        assert shipment["custom_attributes"]["target_point"] == "KRA010"
        tracking = shipment["tracking_number"]
        # and the shop's order has one fulfilment carrying its tracking number and carrier
        fulfilments = shop.orders[order]["fulfillments"]
        assert len(fulfilments) == 1
        info = fulfilments[0]["trackingInfo"][0]
        assert info["number"] == tracking and info["company"] == "InPost"
        # When the parcel is ready for pickup, then picked up
        shipx.advance(shipment["id"], "ready_to_pickup")
        pipeline.drain()
        shipx.advance(shipment["id"], "delivered")
        pipeline.drain()
        # Then the hub's shipment says so, and nothing was shipped or fulfilled twice
        [hub_shipment] = crm.system.live("shipment").values()
        assert hub_shipment["Tracking_Number__c"] == tracking
        assert hub_shipment["Status__c"] == "delivered"
        assert len(shipx.shipments()) == 1
        assert len(shop.orders[order]["fulfillments"]) == 1
    finally:
        shopify.close()
