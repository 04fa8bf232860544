"""Security checks that cut across systems.

* Signatures, tokens and passwords are compared in constant time (``hmac.compare_digest``),
  checked over the source: an ``==`` on a secret is a timing oracle however well it is tested.
* A connector that fails with wrong credentials raises an exception whose text, repr and whole
  traceback chain carry no secret (what an operator pastes into a ticket).
* A fuzz pass over every webhook parser: whatever the body and headers, the only failure is
  ``WebhookRejected`` (a clear status and message), never a crash of the endpoint.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import hmac
import json
import re
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from connectors.inpost import InPostConnector
from connectors.salesforce import SalesforceConnector
from connectors.shopify import ShopifyConnector
from core.connector import WebhookRejected
from core.errors import SynchubError
from sandbox.inpost import ShipXEmulator
from sandbox.salesforce import SalesforceEmulator
from sandbox.shopify.emulator import ShopifyEmulator
from tests.salesforce.conftest import settings_for

ROOT = Path(__file__).resolve().parents[2]
SECRETISH = re.compile(r"digest|signature|hmac|secret|token|password|passwd|api_key", re.I)


def _is_plain_value(node: ast.expr) -> bool:
    """A literal or a SQL column expression: comparing those is not comparing two secrets."""
    return isinstance(node, ast.Constant) or ".c." in ast.unparse(node)


def test_secrets_and_signatures_are_never_compared_with_equals():
    offenders = []
    for folder in ("connectors", "core", "workers"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if not isinstance(node, ast.Compare) or not any(isinstance(o, ast.Eq | ast.NotEq) for o in node.ops):
                    continue
                sides = [node.left, *node.comparators]
                if any(_is_plain_value(s) for s in sides):
                    continue
                if SECRETISH.search(ast.unparse(node)):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []
    # and the verifiers do use the constant-time comparison
    for module in ("connectors/shopify/webhooks.py", "connectors/inpost/connector.py", "core/web/auth.py"):
        assert "hmac.compare_digest" in (ROOT / module).read_text(), module


def _whole_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)) + repr(exc) + str(exc)


def test_a_salesforce_login_with_a_wrong_password_names_no_secret():
    with SalesforceEmulator() as emu:
        wrong = "Wr0ng-Passw0rd-9913"
        settings = settings_for(emu, "password", password=SecretStr(wrong))
        connector = SalesforceConnector("crm", settings)
        with pytest.raises(SynchubError) as caught:
            connector.read_changes("customer", None)
        connector.close()
    text = _whole_text(caught.value)
    assert "INVALID" in text.upper() or "auth" in text.lower()  # it says what went wrong ...
    for value in (wrong, emu.client_secret, emu.security_token):
        assert value not in text  # ... and names no secret


def test_shopify_and_inpost_with_wrong_tokens_name_no_secret():
    with ShopifyEmulator() as shop, ShipXEmulator(token="the-real-token-4411") as shipx:
        wrong = "shpat_wrong_token_0987654321"
        shopify = ShopifyConnector("shop", {**shop.settings(), "token": SecretStr(wrong)})
        inpost = InPostConnector(
            "inpost", {"base_url": shipx.url, "organization_id": 1, "token": SecretStr("shipx-wrong-token-77")}
        )
        failures = []
        for connector, entity in ((shopify, "customer"), (inpost, "shipment")):
            with pytest.raises(SynchubError) as caught:
                connector.read_changes(entity, None)
            failures.append(_whole_text(caught.value))
            connector.close()
    assert "401" in failures[0] or "Invalid API key" in failures[0]
    for text in failures:
        for value in (wrong, "shipx-wrong-token-77", "the-real-token-4411", shop.token, shop.webhook_secret):
            assert value not in text


# --- fuzzing the webhook parsers -----------------------------------------------------------------

FUZZ = settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
TOPICS = st.sampled_from(
    [
        "customers/create",
        "customers/update",
        "customers/delete",
        "customers/redact",
        "orders/create",
        "orders/updated",
        "orders/delete",
        "products/update",
        "inventory_levels/update",
        "app/uninstalled",
        "",
        "customers",
        "../../etc",
    ]
)
SHOPIFY_KEYS = st.sampled_from(
    ["id", "email", "first_name", "customer", "line_items", "addresses", "inventory_item_id", "location_id"]
)


@pytest.fixture(scope="module")
def shopify() -> Iterator[tuple[ShopifyEmulator, ShopifyConnector]]:
    with ShopifyEmulator() as shop:
        connector = ShopifyConnector("shop", shop.settings())
        yield shop, connector
        connector.close()


@pytest.fixture(scope="module")
def inpost() -> Iterator[InPostConnector]:
    with ShipXEmulator(token="fuzz-token-123456", organization_id=41) as shipx:
        connector = InPostConnector("inpost", {"base_url": shipx.url, "organization_id": 41, "token": shipx.token})
        yield connector
        connector.close()


def _signed(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(SHOPIFY_KEYS, JSON, max_size=6).map(lambda v: json.dumps(v).encode()),
    ),
    topic=TOPICS,
    signed=st.booleans(),
)
def test_fuzzed_shopify_webhooks_are_parsed_or_refused(
    shopify: tuple[ShopifyEmulator, ShopifyConnector], body: bytes, topic: str, signed: bool
) -> None:
    shop, connector = shopify
    headers = {"X-Shopify-Topic": topic, "X-Shopify-Event-Id": "ev-1", "Content-Type": "application/json"}
    headers["X-Shopify-Hmac-Sha256"] = _signed(shop.webhook_secret if signed else "other", body)
    try:
        events = connector.parse_webhook(headers, body)
    except WebhookRejected as exc:
        assert 400 <= exc.status < 500 and str(exc)
        return
    for event in events:  # what is accepted is well-formed: an event id, an entity, a dict record
        assert event.event_id.startswith(f"{topic}:") and event.entity and isinstance(event.record, dict)


@FUZZ
@given(
    body=st.one_of(
        st.binary(max_size=200),
        JSON.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries(
            {
                "event": st.sampled_from(["shipment_confirmed", "shipment_status_changed", "other"]) | st.text(),
                "organization_id": st.sampled_from([41, "41", 7, None]) | JSON,
                "payload": st.fixed_dictionaries({"shipment_id": st.integers(-5, 10**12) | JSON}) | JSON,
            }
        ).map(lambda v: json.dumps(v).encode()),
    )
)
def test_fuzzed_inpost_webhooks_are_parsed_or_refused(inpost: InPostConnector, body: bytes) -> None:
    try:
        events = inpost.parse_webhook({"Content-Type": "application/json"}, body)
    except WebhookRejected as exc:
        assert 400 <= exc.status < 500 and str(exc)
        return
    assert isinstance(events, list)
