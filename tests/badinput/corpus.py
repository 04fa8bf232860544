"""The bad-input corpus: every hostile or broken input we know of, with its exact expected outcome.

Each case is one row of the table in docs/reliability.md and one parametrised test. ``outcome`` is
either ``dead: <text the dead letter's error must contain>`` or ``kept`` (the value must arrive in
the CRM exactly as sent: synchub neither mangles nor executes what people type).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordCase:
    name: str
    what: str
    record: dict[str, Any]
    outcome: str
    field: str = "first_name"
    """For ``kept``: the CRM field that must hold the value exactly."""
    expect: Any = None
    """For ``kept``: the exact value expected (default: the shop's firstName as sent)."""


LONG_NAME = "Ż" * 10_240

RECORD_CASES: list[RecordCase] = [
    RecordCase(
        "missing-id",
        "a record without its id",
        {"id": None, "firstName": "Bez", "email": "bez.id@example.pl"},
        "dead: record has no id",
    ),
    RecordCase(
        "invalid-email",
        "an email that is not an address",
        {"firstName": "Adam", "email": "adam(at)example.pl"},
        "dead: customer.emails[0] <- email [email]: not a valid email address",
    ),
    RecordCase(
        "invalid-phone",
        "a phone number that is too short",
        {"firstName": "Adam", "email": "adam.t@example.pl", "phone": "12"},
        "dead: customer.phones[0] <- phone [phone_e164('PL')]: not a valid phone number",
    ),
    RecordCase(
        "wrong-type",
        "a number where text belongs",
        {"firstName": 123, "email": "liczba@example.pl"},
        "dead: customer.first_name <- firstName [strip]: expected text, got int",
    ),
    RecordCase(
        "nested-garbage",
        "an object where text belongs",
        {"firstName": {"$gt": ""}, "email": "obiekt@example.pl"},
        "dead: customer.first_name <- firstName [strip]: expected text, got dict",
    ),
    RecordCase(
        "polish-diacritics",
        "Polish diacritics",
        {"firstName": "Zażółć", "lastName": "Gęślą-Jaźń", "email": "zazolc@example.pl"},
        "kept",
    ),
    RecordCase("emoji", "emoji in a name", {"firstName": "Ola 🌸👩‍💻", "email": "ola.emoji@example.pl"}, "kept"),
    RecordCase(
        "zero-width-name",
        "a zero-width space inside a name",
        {"firstName": "An\u200bna", "email": "anna.zw@example.pl"},
        "kept",
    ),
    RecordCase(
        "zero-width-email",
        "a zero-width space and a BOM inside an email (identity key)",
        {"firstName": "Ewa", "email": "ewa.zw\u200b@example.pl\ufeff"},
        "kept",
        field="email",
        expect="ewa.zw@example.pl",
    ),
    RecordCase(
        "rtl",
        "right-to-left text and a direction override",
        {"firstName": "مريم", "lastName": "\u202eevil", "email": "mariam@example.pl"},
        "kept",
    ),
    RecordCase("long-name", "a 10 kB name", {"firstName": LONG_NAME, "email": "dlugie@example.pl"}, "kept"),
    RecordCase(
        "sql-injection",
        "SQL injection",
        {"firstName": "Robert'); DROP TABLE golden;--", "email": "bobby@example.pl"},
        "kept",
    ),
    RecordCase(
        "soql-injection",
        "SOQL injection",
        {"firstName": "O'Brien' OR Name LIKE '%", "email": "obrien@example.pl"},
        "kept",
    ),
    RecordCase(
        "formula-injection",
        "spreadsheet formula injection",
        {"firstName": '=HYPERLINK("http://evil.example","x")', "email": "formula@example.pl"},
        "kept",
    ),
    RecordCase(
        "html-injection",
        "HTML/script injection",
        {"firstName": "<script>alert(1)</script>", "email": "xss@example.pl"},
        "kept",
    ),
]


def _shown(value: Any) -> str:
    text = repr(value)
    text = "".join(f"\\u{ord(c):04x}" if c in "\u200b\ufeff\u202e" else c for c in text)
    if len(text) > 110:
        text = text[:60] + f"… ({len(text)} chars)"
    return text.replace("|", "\\|")


def record_table() -> str:
    """The corpus as the Markdown table in docs/reliability.md (a test keeps the two equal)."""
    rows = ["| case | input (shop record) | outcome |", "| --- | --- | --- |"]
    for c in RECORD_CASES:
        if c.outcome == "kept":
            value = c.expect if c.expect is not None else c.record.get("firstName")
            outcome = f"kept: the CRM's `{c.field}` is {_shown(value)}"
        else:
            outcome = "dead letter: `" + c.outcome.removeprefix("dead: ") + "`"
        rows.append(f"| `{c.name}` — {c.what} | `{_shown(c.record)}` | {outcome} |")
    return "\n".join(rows)
