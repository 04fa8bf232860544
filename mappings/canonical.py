"""Checking canonical paths against the canonical model, and validating mapped records with it.

A canonical path that does not exist is the most common mapping typo (``adresses.city``), and a
silent one: the value would go nowhere. Resolving every path against the pydantic model at load
time turns it into an error with the closest names.
"""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from core.model import ENTITIES
from mappings.paths import Path


@dataclass(frozen=True)
class PathProblem:
    message: str
    step: int
    suggestions: tuple[str, ...] = ()


def _unwrap(annotation: Any) -> Any:
    """Strip ``Optional``/``Annotated`` to reach the type a path walks into."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def resolve(entity: str, path: Path) -> tuple[Any, PathProblem | None]:
    """The type at ``path`` in ``entity``'s model, or the problem with the step that failed."""
    current: Any = ENTITIES[entity]
    for i, step in enumerate(path):
        current = _unwrap(current)
        origin = typing.get_origin(current)
        if step.kind == "key":
            if isinstance(current, type) and issubclass(current, BaseModel):
                fields = current.model_fields
                if step.key not in fields:
                    close = tuple(difflib.get_close_matches(step.key, list(fields), n=3, cutoff=0.6))
                    return None, PathProblem(
                        f"{current.__name__} has no field {step.key!r}", i, close or tuple(sorted(fields))[:0]
                    )
                current = fields[step.key].annotation
            elif origin is dict:
                current = typing.get_args(current)[1]
            else:
                return None, PathProblem(f"{step.key!r} goes inside a value that has no fields", i)
        elif step.kind in ("each", "index"):
            if origin is not list:
                return None, PathProblem(f"{step} applies to a list, and this value is not one", i)
            current = typing.get_args(current)[0]
        else:
            return None, PathProblem("[key=value] selectors are for native paths only", i)
    return _unwrap(current), None


def compact(value: Any) -> Any:
    """Drop null placeholders from lists: ``phones: [null, "+48…"]`` → ``["+48…"]``.

    Positional paths (``phones[0]`` ← Phone, ``phones[1]`` ← MobilePhone) keep their positions
    inside the sync core, where a null means "nothing at this position"; the canonical view of a
    record, the one validated and shown, has no such holes.
    """
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value if v is not None]
    return value


def validation_problems(entity: str, record: dict[str, Any]) -> list[tuple[str, str]]:
    """Validate a (partial) canonical record with the model: ``[(path, message)]``, empty if fine."""
    try:
        ENTITIES[entity].model_validate(compact(record))
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            path = ""
            for part in err["loc"]:
                path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
            out.append((path, err["msg"]))
        return out
    return []
