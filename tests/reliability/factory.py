"""The runtime of the fault storm's worker processes (``SYNCHUB_RUNTIME=tests.reliability.factory:runtime``).

The hub is the Salesforce connector on the Salesforce emulator, the shop the Shopify connector on
the Shopify emulator and, when the spec names one, the ERP the Tryton connector on a real trytond
(stock levels in, written out to the shop), all with the shipped mappings; the state store is a
SQLite file every process shares. The emulators live in the test process, so they outlive any worker killed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from connectors.salesforce import SalesforceConnector
from connectors.shopify import ShopifyConnector
from connectors.tryton import TrytonConnector
from core.store.db import Store
from core.sync.pipeline import Pipeline, RetryPolicy
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from workers.runtime import Runtime

MAPPINGS = Path(__file__).resolve().parents[2] / "mappings"
ENV = "SYNCHUB_STORM"


def crm_settings(sf: Any, **extra: Any) -> dict[str, Any]:
    """The hub's connector settings on a Salesforce emulator ``sf``: read 1 s behind (the emulator's
    SystemModstamp has whole seconds, as the real one does), plus ``extra``."""
    return {
        "login_url": sf.base_url,
        "client_id": sf.client_id,
        "client_secret": sf.client_secret,
        "ca_bundle": sf.ca_bundle,
        "read_lag_seconds": 1,
        **extra,
    }


def build(spec: dict[str, Any]) -> Runtime:
    crm = SalesforceConnector("crm", spec["crm"])
    shop = ShopifyConnector("shop", spec["shop"])
    # "in" for benches that measure one direction: nothing is written back to the shop
    shop_flow = str(spec.get("shop_flow", "both"))
    shop_entities = {"customer": shop_flow}
    spokes: dict[str, System] = {}
    if "erp" in spec:  # a real Tryton: its stock reaches the shop (the ERP owns stock; the CRM holds none)
        erp = TrytonConnector("erp", spec["erp"])
        spokes["erp"] = System("erp", "tryton", load_mapping(MAPPINGS / "tryton.yaml"), {"stock_level": "in"}, erp)
        shop_entities["stock_level"] = "out"
    spokes["shop"] = System("shop", "shopify", load_mapping(MAPPINGS / "shopify.yaml"), shop_entities, shop)
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "salesforce.yaml"), {"customer": "both"}, crm),
        spokes=spokes,
    )
    pipeline = Pipeline(
        Store(spec["store"]),
        systems,
        retry=RetryPolicy(max_attempts=40, base_delay=0.1, max_delay=1.0, max_age=None),
        lease_seconds=float(spec.get("lease_seconds", 5.0)),
    )
    return Runtime(pipeline, flush_window=float(spec.get("flush_window", 0.1)), sweep_after=1.0)


def runtime() -> Runtime:
    return build(json.loads(os.environ[ENV]))
