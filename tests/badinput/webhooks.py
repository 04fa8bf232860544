"""The bad-webhook corpus: every broken or hostile delivery we know of, with its exact outcome.

Each case is one row of the webhook table in docs/reliability.md and one parametrised test
(``test_webhooks.py``). A case builds a delivery to ``POST /webhooks/shop`` from a good Shopify
customer payload: ``body`` (bytes, or None for the good payload), ``headers`` overriding the good
ones (a value of None removes the header), ``sign`` whether the HMAC is computed over the body as
sent (``"other"``: with a wrong secret). ``outcome`` says what must happen to the delivery:

* ``kept`` — refused with ``status``/``message`` and kept as a ``webhook`` dead letter;
* ``kept-headers`` — refused, kept without its body (never read: larger than the limit);
* ``duplicate`` — acknowledged as a redelivery, nothing new stored;
* ``ignored`` — accepted into the inbox and marked ``ignored`` (a topic the mapping does not use);
* ``dead`` — accepted, then the record is a dead letter at ingestion with ``message``;
* ``refused`` — refused with ``status``/``message``, nothing stored (there is no system to keep it for).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MAX_BYTES = 64 * 1024
"""The web app's body limit in these tests (the default is 1 MiB; the behaviour is the same)."""


def customer(n: int, **fields: Any) -> dict[str, Any]:
    """A Shopify REST customer webhook payload (the shape of customers/update)."""
    return {
        "id": 7_000_000 + n,
        "admin_graphql_api_id": f"gid://shopify/Customer/{7_000_000 + n}",
        "email": f"klient{n}@example.pl",
        "first_name": f"Klient{n}",
        "last_name": "Testowy",
        "created_at": "2026-11-20T10:00:00+01:00",
        "updated_at": "2026-11-20T10:00:00+01:00",
        **fields,
    }


@dataclass(frozen=True)
class WebhookCase:
    name: str
    what: str
    outcome: str
    status: int = 202
    message: str = ""
    body: bytes | None = None
    headers: dict[str, str | None] = field(default_factory=dict)
    sign: str = "right"
    path: str = "shop"


GOOD = json.dumps(customer(50)).encode()

WEBHOOK_CASES: list[WebhookCase] = [
    WebhookCase(
        "malformed-json",
        "a body cut in the middle of a JSON object",
        "kept",
        400,
        "webhook body is not JSON (Expecting property name enclosed in double quotes: line 1 column 25 (char 24))",
        body=b'{"id": 1, "email": "a"' + b", ",
    ),
    WebhookCase(
        "not-an-object",
        "valid JSON that is not an object",
        "kept",
        400,
        "webhook body is not a JSON object",
        body=b"[1, 2, 3]",
    ),
    WebhookCase(
        "wrong-content-type",
        "a form post instead of JSON",
        "kept",
        415,
        "Content-Type must be application/json (got application/x-www-form-urlencoded)",
        body=b"email=a%40example.pl",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    WebhookCase("empty-body", "an empty body", "kept", 400, "webhook body is empty", body=b""),
    WebhookCase(
        "oversized-body",
        "a body over the size limit",
        "kept-headers",
        413,
        "body too large",
        body=b'{"pad": "' + b"x" * MAX_BYTES + b'"}',
    ),
    WebhookCase(
        "truncated-utf8",
        "a body cut inside a multi-byte character",
        "kept",
        400,
        "webhook body is not UTF-8 (unexpected end of data at byte 18)",
        body='{"first_name": "Zaż'.encode()[:-1],
    ),
    WebhookCase(
        "invalid-utf8",
        "a Latin-2 body where UTF-8 belongs",
        "kept",
        400,
        "webhook body is not UTF-8 (invalid start byte at byte 18)",
        body='{"first_name": "Zażółć"}'.encode("iso-8859-2"),
    ),
    WebhookCase(
        "wrong-hmac",
        "signed with another secret",
        "kept",
        401,
        "webhook HMAC does not match the body (X-Shopify-Hmac-Sha256)",
        sign="other",
    ),
    WebhookCase(
        "missing-hmac",
        "no signature header",
        "kept",
        401,
        "webhook has no X-Shopify-Hmac-Sha256 header",
        headers={"X-Shopify-Hmac-Sha256": None},
    ),
    WebhookCase(
        "tampered-body",
        "a body changed after signing (signature of the original)",
        "kept",
        401,
        "webhook HMAC does not match the body (X-Shopify-Hmac-Sha256)",
        body=GOOD.replace(b"Klient50", b"Mallory"),
        sign="original",
    ),
    WebhookCase(
        "missing-topic",
        "no topic header",
        "kept",
        400,
        "X-Shopify-Topic and X-Shopify-Event-Id/X-Shopify-Webhook-Id are required",
        headers={"X-Shopify-Topic": None},
    ),
    WebhookCase(
        "not-a-customer",
        "a signed object that is not a customer",
        "kept",
        422,
        "customers/update payload is not a Shopify customer (no id)",
        body=b'{"addresses": 5}',
    ),
    WebhookCase(
        "replayed",
        "the same delivery sent again (a replay or a redelivery)",
        "duplicate",
        202,
        '{"accepted": 0, "duplicates": 1}',
        body=GOOD,
        headers={"X-Shopify-Event-Id": "ev-good-before"},
    ),
    WebhookCase(
        "unknown-topic",
        "a topic synchub does not map",
        "ignored",
        202,
        '{"accepted": 1, "duplicates": 0}',
        headers={"X-Shopify-Topic": "customer_tags/added"},
    ),
    WebhookCase(
        "invalid-record",
        "a well-formed, signed webhook whose record fails validation",
        "dead",
        202,
        "customer.emails[0] <- defaultEmailAddress.emailAddress [email]: not a valid email address",
        body=json.dumps(customer(51, email="klient51(at)example.pl")).encode(),
    ),
    WebhookCase(
        "injection-in-record",
        "SOQL and formula injection inside a signed record",
        "accepted",
        202,
        '=HYPERLINK("http://evil.example","x")\' OR Name LIKE \'%',
        body=json.dumps(customer(52, first_name='=HYPERLINK("http://evil.example","x")\' OR Name LIKE \'%')).encode(),
    ),
    WebhookCase(
        "unknown-system",
        "a delivery to a system that is not configured",
        "refused",
        404,
        "unknown system",
        path="nosuch",
    ),
]


def _shown(case: WebhookCase) -> str:
    parts = []
    if case.body is not None:
        text = repr(case.body)
        parts.append(text if len(text) <= 50 else f"{text[:40]}… ({len(case.body)} bytes)")
    for k, v in case.headers.items():
        parts.append(f"{k}: {'(none)' if v is None else v}")
    if case.sign != "right":
        parts.append({"other": "HMAC with another secret", "original": "HMAC of the untampered body"}[case.sign])
    if case.path != "shop":
        parts.append(f"POST /webhooks/{case.path}")
    return "; ".join(parts).replace("|", "\\|") or "(a good delivery)"


def webhook_table() -> str:
    """The corpus as the Markdown table in docs/reliability.md (a test keeps the two equal)."""
    outcomes = {
        "kept": "refused, kept as a `webhook` dead letter (body as received)",
        "kept-headers": "refused, kept as a `webhook` dead letter (headers and size; body never read)",
        "duplicate": "acknowledged as a redelivery; nothing new stored",
        "ignored": "accepted; its inbox row is marked `ignored`",
        "dead": "accepted; the record is an `ingest` dead letter",
        "accepted": "accepted; the value reaches the CRM byte for byte",
        "refused": "refused; nothing stored",
    }
    rows = ["| case | delivery | answer | outcome |", "| --- | --- | --- | --- |"]
    for c in WEBHOOK_CASES:
        answer = f"{c.status}" + (f" `{c.message}`" if c.outcome in ("kept", "kept-headers", "refused") else "")
        if c.outcome in ("dead", "accepted", "duplicate", "ignored"):
            answer = f"{c.status}"
        detail = outcomes[c.outcome]
        if c.outcome == "dead":
            detail += f": `{c.message}`"
        rows.append(f"| `{c.name}` — {c.what} | `{_shown(c)}` | {answer} | {detail} |")
    return "\n".join(rows)
