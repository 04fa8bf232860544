"""JSON that round-trips the canonical model's types.

Why not plain ``json``: the store keeps canonical values (``Decimal`` money, aware ``datetime``)
and compares them with freshly mapped ones. If ``Decimal("19.90")`` came back as ``"19.90"`` every
comparison would report a change and every record would be re-synced forever. Tagged objects
(``{"$decimal": "19.90"}``) keep the type; everything else is ordinary JSON.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

_TAGS = ("$decimal", "$datetime", "$date")


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
        if key in _TAGS:
            raw = obj[key]
            if key == "$decimal":
                return Decimal(raw)
            if key == "$datetime":
                return datetime.fromisoformat(raw)
            return date.fromisoformat(raw)
    return obj


def dumps(value: Any) -> str:
    """Serialise with tags for Decimal/datetime/date; keys sorted so equal values give equal text."""
    return json.dumps(value, default=_default, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    return json.loads(text, object_hook=_hook)


def fingerprint(value: Any) -> str:
    """A stable digest of a value: equal canonical values, equal fingerprints, whatever the key order."""
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()
