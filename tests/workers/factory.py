"""The runtime of the cross-process worker tests (``SYNCHUB_RUNTIME=tests.workers.factory:runtime``).

A CRM played by ``sandbox.http_target`` (outside every worker process, so it survives them) and a
shop whose changes arrive through the inbox; the state store is a SQLite file every process shares.
"""

from __future__ import annotations

import os

from connectors.memory import MemoryConnector
from core.store.db import Store
from core.sync.pipeline import Pipeline, RetryPolicy
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from sandbox.http_target import HttpTargetConnector
from tests.sync.helpers import MAPPINGS
from workers.runtime import Runtime


def build(store_url: str, target_url: str, *, lease_seconds: float = 3.0) -> Runtime:
    crm = HttpTargetConnector("crm", {"url": target_url})
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "out"}, crm),
        spokes={
            "shop": System(
                "shop", "shopify", load_mapping(MAPPINGS / "shop.yaml"), {"customer": "in"}, MemoryConnector("shop")
            )
        },
    )
    pipeline = Pipeline(
        Store(store_url),
        systems,
        retry=RetryPolicy(max_attempts=12, base_delay=0.1, max_delay=2.0),
        lease_seconds=lease_seconds,
    )
    return Runtime(pipeline, flush_window=0.05, sweep_after=1.0)


def runtime() -> Runtime:
    return build(
        os.environ["SYNCHUB_STORE_URL"],
        os.environ["SYNCHUB_TARGET_URL"],
        lease_seconds=float(os.environ.get("SYNCHUB_LEASE_SECONDS", "3")),
    )
