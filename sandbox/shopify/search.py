"""The part of Shopify's search syntax the emulator understands: ``field:value`` terms, optional
comparison (``:>=``), quoted values with backslash escapes, ``AND`` (or a space) and ``OR``.
https://shopify.dev/docs/api/usage/search-syntax
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

TOKEN = re.compile(r'\s*(?:(OR|AND)\b|(\w[\w.]*):(>=|<=|>|<)?("(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[^\s)]+))')


def parse(query: str | None) -> list[list[tuple[str, str, str]]]:
    """OR-groups of AND-ed ``(field, op, value)`` terms."""
    groups: list[list[tuple[str, str, str]]] = [[]]
    pos = 0
    text = (query or "").strip()
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse search query at {text[pos:]!r}")
        pos = m.end()
        if m.group(1) == "OR":
            groups.append([])
            continue
        if m.group(1) == "AND":
            continue
        value = m.group(4)
        if value[:1] in "\"'":
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        groups[-1].append((m.group(2), m.group(3) or "=", value))
    return [g for g in groups if g]


def matcher(query: str | None, fields: dict[str, Callable[[Any], Any]]) -> Callable[[Any], bool]:
    groups = parse(query)

    def match(obj: Any) -> bool:
        if not groups:
            return True
        return any(all(_term(obj, t, fields) for t in g) for g in groups)

    return match


def _term(obj: Any, t: tuple[str, str, str], fields: dict[str, Callable[[Any], Any]]) -> bool:
    name, op, value = t
    getter = fields.get(name)
    if getter is None:
        return True  # Shopify ignores filters it does not know (and warns in extensions)
    have = getter(obj)
    if have is None:
        return False
    have = str(have)
    return {
        "=": have.lower() == value.lower(),
        ">": have > value,
        ">=": have >= value,
        "<": have < value,
        "<=": have <= value,
    }[op]
