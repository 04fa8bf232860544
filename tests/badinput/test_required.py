"""A record missing a value its mapping requires: a dead letter saying which, the rest of its page
arrives. The shipped Shopify mapping requires an order's total (``totalPriceSet``)."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.inpost import ShipXEmulator
from tests.inpost.deployment import MAPPINGS, ORGANIZATION, TOKEN, deployment


def test_an_order_missing_its_required_total_is_a_dead_letter_and_its_page_arrives(store, tmp_path: Path):
    with ShipXEmulator(token=TOKEN, organization_id=ORGANIZATION) as shipx:
        d = deployment(store, shipx, tmp_path)
        customer = json.loads((MAPPINGS / "samples" / "shopify-customer.json").read_text(encoding="utf-8"))
        sample = json.loads((MAPPINGS / "samples" / "shopify-order.json").read_text(encoding="utf-8"))
        d.shop.system.put("customer", customer, native_id=customer["id"])
        d.pipeline.drain()
        # Given three orders in one page of the shop's changes, the middle one without its total
        ids = [f"gid://shopify/Order/90{n}" for n in range(3)]
        for n, oid in enumerate(ids):
            order = {**sample, "id": oid, "name": f"#90{n}", "customer": {"id": customer["id"]}}
            if n == 1:
                del order["totalPriceSet"]
            d.shop.system.put("order", order, native_id=oid)
        # When the shop is polled and everything is flushed
        d.pipeline.drain()
        # Then the bad one is a dead letter naming the field and the rule, its payload kept for replay
        dead = [dl for dl in d.dead_letters("shop") if dl.entity == "order"]
        assert len(dead) == 1, [dl.error for dl in dead]
        assert "order.total <- totalPriceSet.shopMoney.amount" in dead[0].error
        assert "required value is missing" in dead[0].error
        assert dead[0].payload["id"] == ids[1] and dead[0].status == "open"
        # And its neighbours reached the CRM
        crm_orders = d.crm.system.live("order")
        assert len(crm_orders) == 2
