"""Safe SOQL: every value becomes a literal through ``literal``; queries are assembled only from
identifiers we validate and literals we quote — never from a user's text spliced into a string.

Quoting follows the SOQL reference's "Quoted String Escape Sequences" (backslash escapes ``\\'``,
``\\"``, ``\\\\``, ``\\n``, ``\\r``, ``\\t``, ``\\b``, ``\\f``) and its date formats (unquoted
``YYYY-MM-DD`` / ``YYYY-MM-DDThh:mm:ssZ``):
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_ESCAPES = {"\\": "\\\\", "'": "\\'", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)*")


def quote(text: str) -> str:
    """A string literal: ``O'Brien`` → ``'O\\'Brien'``. Wildcards stay wildcards (see ``like``)."""
    return "'" + "".join(_ESCAPES.get(ch, ch) for ch in text) + "'"


def like(text: str, *, prefix: bool = False, contains: bool = False) -> str:
    """A LIKE pattern matching ``text`` literally (``%`` and ``_`` escaped), optionally as a prefix
    or a substring."""
    body = "".join(_ESCAPES.get(ch, "\\" + ch if ch in "%_" else ch) for ch in text)
    return "'" + ("%" if contains else "") + body + ("%" if prefix or contains else "") + "'"


def literal(value: Any) -> str:
    """Any Python value as a SOQL literal; a list becomes ``(a, b, …)`` for IN."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise ValueError(f"no SOQL literal for {value!r}")
        return format(number, "f")  # plain digits: SOQL has no exponent notation (1e-05, 1E+2)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a SOQL dateTime needs a time zone")
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Iterable):
        items = [literal(v) for v in value]
        if not items:
            raise ValueError("IN () needs at least one value")
        return "(" + ", ".join(items) + ")"
    raise TypeError(f"no SOQL literal for {type(value).__name__}")


def ident(name: str) -> str:
    """An object or field name, checked (identifiers cannot be quoted in SOQL, so they are validated)."""
    if not _IDENT.fullmatch(name):
        raise ValueError(f"not a SOQL identifier: {name!r}")
    return name


def soql(template: str, *args: Any) -> str:
    """``soql("SELECT Id FROM Contact WHERE Email = {}", email)``: each ``{}`` becomes a literal."""
    parts = template.split("{}")
    if len(parts) != len(args) + 1:
        raise ValueError("placeholders and values differ in number")
    out = [parts[0]]
    for arg, rest in zip(args, parts[1:], strict=True):
        out.append(literal(arg))
        out.append(rest)
    return "".join(out)


def select(
    fields: Iterable[str],
    obj: str,
    where: Iterable[str] = (),
    *,
    subqueries: Iterable[str] = (),
    order_by: Iterable[str] = (),
    limit: int | None = None,
) -> str:
    """Assemble a query from checked identifiers and conditions already built with ``literal``/``soql``."""
    columns = [ident(f) for f in fields] + [f"({q})" for q in subqueries]
    text = "SELECT " + ", ".join(columns) + " FROM " + ident(obj)  # noqa: S608 - identifiers checked, values quoted
    conditions = list(where)
    if conditions:
        text += " WHERE " + " AND ".join(conditions)
    order = [ident(o.split()[0]) + (" DESC" if o.upper().endswith(" DESC") else " ASC") for o in order_by]
    if order:
        text += " ORDER BY " + ", ".join(order)
    if limit is not None:
        text += f" LIMIT {int(limit)}"
    return text
