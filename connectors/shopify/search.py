"""Shopify search syntax (the ``query:`` argument), always built with quoted, escaped values.

https://shopify.dev/docs/api/usage/search-syntax — a value in double quotes may hold any character;
a backslash escapes ``"`` and ``\\`` inside it. Nothing from a record is ever pasted in unquoted.
"""

from __future__ import annotations


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def term(field: str, value: str, op: str = "") -> str:
    """``field:<op>"value"`` — ``field`` and ``op`` come from our code, never from data."""
    if op not in ("", ">", ">=", "<", "<="):
        raise ValueError(f"bad comparison {op!r}")
    return f"{field}:{op}{quote(value)}"


def any_of(field: str, values: list[str]) -> str:
    return " OR ".join(term(field, v) for v in values)
