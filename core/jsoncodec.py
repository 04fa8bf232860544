"""JSON that round-trips the canonical model's types.

Why not plain ``json``: the store keeps canonical values (``Decimal`` money, aware ``datetime``)
and compares them with freshly mapped ones. If ``Decimal("19.90")`` came back as ``"19.90"`` every
comparison would report a change and every record would be re-synced forever. Tagged objects
(``{"$decimal": "19.90"}``) keep the type; everything else is ordinary JSON.

Why orjson: every change serialises its golden record, bases, outbox payload and fingerprints a
dozen times; the standard library's encoder and decoder were a seventh of the pipeline's CPU
(docs/benchmarks.md, *Own overhead*). orjson writes the same text (sorted keys, compact, UTF-8 not
escaped) but for two float spellings: a small exponent (``1e-7``, where the standard library wrote
``1e-07``) and NaN or an infinity, which JSON cannot hold (PostgreSQL refuses them), written as
null. What orjson refuses (integers beyond 64 bits, non-string keys, lone surrogates) goes
through the standard library as before.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson

_FROM_TAG: dict[str, Any] = {"$decimal": Decimal, "$datetime": datetime.fromisoformat, "$date": date.fromisoformat}


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": format(value, "f")}
    if isinstance(value, datetime):
        return {"$datetime": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot store a {type(value).__name__} as JSON")


def _hook(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        key = next(iter(obj))
        convert = _FROM_TAG.get(key)
        if convert is not None:
            return convert(obj[key])
    return obj


_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_PASSTHROUGH_DATETIME  # date/datetime: tagged by _default


def dumps(value: Any) -> str:
    """Serialise with tags for Decimal/datetime/date; keys sorted so equal values give equal text."""
    try:
        return orjson.dumps(value, default=_default, option=_OPTIONS).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return _std_dumps(value)  # raises the same TypeError for a value nothing can store


def _std_dumps(value: Any) -> str:
    return json.dumps(value, default=_default, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text, object_hook=_hook)  # NaN, Infinity: what the standard library wrote
    # only a text with ``"$`` may hold tags; turning them back into values by walking orjson's
    # result takes 60 % of the standard library's decoder calling a hook per object
    tagged = b'"$' in text if isinstance(text, bytes) else '"$' in text
    return _untag(value) if tagged else value


def _untag(value: Any) -> Any:
    kind = type(value)
    if kind is dict:
        return _untag_object(value)
    if kind is list:
        _untag_list(value)
    return value


def _untag_object(obj: dict[str, Any]) -> Any:
    if len(obj) == 1:
        for key, raw in obj.items():
            convert = _FROM_TAG.get(key)
            if convert is not None:
                return convert(raw)
    for key, item in obj.items():
        kind = type(item)
        if kind is dict:
            obj[key] = _untag_object(item)
        elif kind is list:
            _untag_list(item)
    return obj


def _untag_list(items: list[Any]) -> None:
    for i, item in enumerate(items):
        kind = type(item)
        if kind is dict:
            items[i] = _untag_object(item)
        elif kind is list:
            _untag_list(item)


def fingerprint(value: Any) -> str:
    """A stable digest of a value: equal canonical values, equal fingerprints, whatever the key order."""
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()
