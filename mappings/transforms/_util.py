"""Helpers shared by the built-in transforms (not transforms themselves)."""

from __future__ import annotations

import functools
import re
import unicodedata
from decimal import Decimal
from typing import Any

from mappings.errors import TransformError

PathKey = str | int

_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[(-?\d+)\]|\[([^\[\]]+)\]|(\.)")


@functools.lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple[PathKey, ...]:
    """Split ``a.b[0].c`` into ``("a", "b", 0, "c")``; ``[key]`` (not a number) is the string key.

    Raises ValueError for anything else (empty segments, unbalanced brackets).
    """
    keys: list[PathKey] = []
    pos = 0
    expect_name = True  # at the start or after a dot a name must follow
    while pos < len(path):
        m = _PATH_TOKEN.match(path, pos)
        if m is None:
            raise ValueError(f"bad path {path!r} at {pos}")
        name, index, key, dot = m.groups()
        if dot:
            if expect_name:
                raise ValueError(f"bad path {path!r}: empty segment at {pos}")
            expect_name = True
        elif name is not None:
            if not expect_name:
                raise ValueError(f"bad path {path!r}: missing '.' at {pos}")
            keys.append(name)
            expect_name = False
        else:
            if expect_name and keys:
                raise ValueError(f"bad path {path!r}: '[' after '.' at {pos}")
            keys.append(int(index) if index is not None else key)
            expect_name = False
        pos = m.end()
    if expect_name:
        raise ValueError(f"bad path {path!r}: it is empty or ends with '.'")
    return tuple(keys)


def get_path(obj: Any, keys: tuple[PathKey, ...]) -> Any:
    """Read ``keys`` from nested dicts/lists (or attributes of objects); anything missing is None."""
    for key in keys:
        if obj is None:
            return None
        if type(key) is int:
            if isinstance(obj, list | tuple) and -len(obj) <= key < len(obj):
                obj = obj[key]
            else:
                return None
        elif isinstance(obj, dict):
            obj = obj.get(key)
        elif isinstance(key, str) and not key.startswith("_"):
            obj = getattr(obj, key, None)
        else:
            return None
    return obj


def plain(value: Decimal) -> str:
    """A Decimal in plain notation (``1E+3`` → ``"1000"``), never an exponent."""
    return format(value, "f")


def type_error(value: Any, expected: str) -> TransformError:
    """The error for a value of the wrong type, naming what was expected and what came."""
    return TransformError(f"expected {expected}, got {type(value).__name__}")


def shorten(items: list[Any], limit: int = 10) -> str:
    """``a, b, c`` for messages listing known values, cut after ``limit`` items."""
    shown = ", ".join(repr(i) for i in items[:limit])
    return shown + (f", … ({len(items) - limit} more)" if len(items) > limit else "")


_FOLD = str.maketrans({"ł": "l", "ø": "o", "đ": "d", "ð": "d", "æ": "ae", "œ": "oe", "ı": "i", "þ": "th"})
_NON_ALNUM = re.compile(r"[\W_]+")


def country_key(name: str) -> str:
    """How country names are compared: case, accents, punctuation and a leading "the" ignored.

    ``"Côte d'Ivoire"`` → ``"cote d ivoire"``, ``"Węgry"`` → ``"wegry"``, ``"The Gambia"`` → ``"gambia"``.
    """
    text = unicodedata.normalize("NFKD", name.casefold().translate(_FOLD))
    text = "".join(c for c in text if not unicodedata.combining(c))
    text = " ".join(_NON_ALNUM.sub(" ", text).split())
    return text[4:] if text.startswith("the ") else text
