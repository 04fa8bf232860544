"""How Tryton's answers become our typed errors (trytond/protocols/jsonrpc.py and dispatcher.py).

The answers are Tryton's own shapes, served by httpx.MockTransport (a stand-in for the network,
not for any part of synchub); the real-server behaviour of the same paths is covered in
test_contract.py / test_cursor.py (401 renewal, wrong password).
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import httpx
import pytest

from connectors.tryton.rpc import TrytonClient, classify
from core.errors import ConfigError, PermanentError, RateLimited, RecordRejected, TransientError

LOGIN = {"id": 1, "result": [1, "s3ss10n", None]}
PREFS = {"id": 2, "result": {"company": 1, "language": "en"}}


@pytest.mark.parametrize(
    ("error", "kind", "code"),
    [
        (["UserError", ['The field "Name" on "Party" is required.', "", None]], RecordRejected, "UserError"),
        (["UserWarning", ["sale_confirm", "Sale has no lines.", ""]], RecordRejected, "UserWarning"),
        (["ConcurrencyException", "Records were modified in the meanwhile"], TransientError, None),
        (["database is locked", "Traceback ..."], TransientError, None),
        (["could not serialize access due to concurrent update", "Traceback ..."], TransientError, None),
        (["'res.user'", ""], PermanentError, None),
        ({"unexpected": True}, PermanentError, None),
    ],
)
def test_rpc_errors_are_classified_by_what_to_do(error, kind, code):
    exc = classify(error)
    assert type(exc) is kind
    assert getattr(exc, "code", None) == code


def client_answering(*answers: httpx.Response) -> tuple[TrytonClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return queue.pop(0)

    return TrytonClient("http://tryton.test", "db", "sync", "pw", transport=httpx.MockTransport(handler)), seen


def test_throttling_is_rate_limited_with_the_servers_retry_after():
    client, _ = client_answering(httpx.Response(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as info:
        client.login()
    assert info.value.retry_after == 7.0


def test_an_unknown_database_is_a_configuration_error():
    client, _ = client_answering(httpx.Response(404))
    with pytest.raises(ConfigError):
        client.login()


def test_a_lost_answer_to_a_read_is_retried_but_to_a_create_is_not():
    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        method = json.loads(request.content)["method"]
        calls.append(method)
        if method == "common.db.login":
            return httpx.Response(200, json=LOGIN)
        if method == "model.res.user.get_preferences":
            return httpx.Response(200, json=PREFS)
        if calls.count(method) == 1:
            raise httpx.ReadError("connection reset", request=request)
        return httpx.Response(200, json={"id": 9, "result": []})

    client = TrytonClient("http://tryton.test", "db", "sync", "pw", transport=httpx.MockTransport(handler))
    assert client.search_read("party.party", [], ["id"]) == []
    assert calls.count("model.party.party.search_read") == 2
    with pytest.raises(TransientError, match="may have happened"):
        client.model("party.party", "create", [{"name": "x"}])
    assert calls.count("model.party.party.create") == 1  # never sent twice: it may have happened


def test_the_session_header_carries_login_user_and_session_and_typed_values_round_trip():
    client, seen = client_answering(
        httpx.Response(200, json=LOGIN),
        httpx.Response(200, json=PREFS),
        httpx.Response(200, json={"id": 3, "result": [{"list_price": {"__class__": "Decimal", "decimal": "19.90"}}]}),
    )
    (row,) = client.search_read("product.product", [["list_price", ">", Decimal("10")]], ["list_price"])
    assert row["list_price"] == Decimal("19.90")
    assert seen[2].headers["Authorization"] == "Session " + base64.b64encode(b"sync:1:s3ss10n").decode()
    body = json.loads(seen[2].content)
    assert body["params"][0] == [["list_price", ">", {"__class__": "Decimal", "decimal": "10"}]]
    assert body["params"][-1] == {"company": 1, "language": "en"}  # the user's context, last
