"""Bulk-operation results: a JSONL file streamed line by line, children folded into their parent.

A bulk query's nested connections come back as their own lines carrying ``__parentId``; with
``groupObjects: true`` every child line follows its parent before the next root object, so one
root at a time is held in memory however large the file is.
https://shopify.dev/docs/api/usage/bulk-operations/queries#the-jsonl-data-format
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from core.errors import PermanentError


def gid_type(gid: str) -> str:
    """``gid://shopify/LineItem/1`` → ``LineItem``."""
    parts = gid.split("/")
    return parts[3] if len(parts) > 4 else ""


def reassemble(lines: Iterable[str], children: dict[str, str]) -> Iterator[dict[str, Any]]:
    """Root objects with their children under ``{connection: {nodes: [...]}}``, one at a time."""
    current: dict[str, Any] | None = None
    for line in lines:
        if not line.strip():
            continue
        obj = json.loads(line)
        parent = obj.pop("__parentId", None)
        if parent is None:
            if current is not None:
                yield current
            current = obj
            for connection in children.values():
                current.setdefault(connection, {"nodes": []})
            continue
        if current is None or current.get("id") != parent:
            raise PermanentError(f"bulk result line for {parent} does not follow its parent (groupObjects off?)")
        child_of = children.get(gid_type(str(obj.get("id", ""))))
        if child_of is None:
            raise PermanentError(f"bulk result has a child of unexpected type: {obj.get('id')}")
        current[child_of]["nodes"].append(obj)
    if current is not None:
        yield current
