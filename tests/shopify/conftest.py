"""Fixtures: a Shopify emulator on 127.0.0.1 and a connector pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from connectors.shopify import ShopifyConnector
from sandbox.shopify.emulator import ShopifyEmulator


@pytest.fixture
def shop() -> Iterator[ShopifyEmulator]:
    with ShopifyEmulator(restore_rate=2000.0) as emulator:
        yield emulator


@pytest.fixture
def connector(shop: ShopifyEmulator) -> Iterator[ShopifyConnector]:
    c = ShopifyConnector("shop_pl", shop.settings())
    yield c
    c.close()
