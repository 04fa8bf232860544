"""Reading transform pipelines as integrators write them.

Accepted forms (see docs/mapping-files.md)::

    transform: strip | lower
    transform: phone_e164(region="PL")
    transform:
      - strip
      - map: {paid: paid, pending: pending}
        default: pending

Arguments are Python literals read with ``ast.literal_eval``: no code is ever evaluated.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepCall:
    """A step as written: name and arguments, and where it sits (list index, offset in the string)."""

    name: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    item: int | None = None
    offset: int = 0


class PipelineSyntaxError(ValueError):
    def __init__(self, message: str, item: int | None = None, offset: int = 0) -> None:
        super().__init__(message)
        self.item = item
        self.offset = offset


def _split_pipes(text: str) -> list[tuple[str, int]]:
    """Split on ``|`` outside quotes and brackets; keep each part's offset for error columns."""
    parts: list[tuple[str, int]] = []
    depth = 0
    quote = ""
    start = 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote and text[i - 1] != "\\":
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append((text[start:i], start))
            start = i + 1
    parts.append((text[start:], start))
    return parts


def _parse_expr(text: str, offset: int, item: int | None) -> StepCall:
    stripped = text.strip()
    lead = offset + (len(text) - len(text.lstrip()))
    if not stripped:
        raise PipelineSyntaxError("empty transform step (a stray '|'?)", item, offset)
    try:
        node = ast.parse(stripped, mode="eval").body
    except SyntaxError as exc:
        raise PipelineSyntaxError(f"cannot read transform step {stripped!r}: {exc.msg}", item, lead) from None
    if isinstance(node, ast.Name):
        return StepCall(node.id, item=item, offset=lead)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        try:
            args = tuple(ast.literal_eval(a) for a in node.args)
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg is not None}
        except ValueError:
            raise PipelineSyntaxError(
                f"arguments of {node.func.id} must be literals (strings, numbers, lists, dicts)", item, lead
            ) from None
        return StepCall(node.func.id, args, kwargs, item, lead)
    raise PipelineSyntaxError(f"cannot read transform step {stripped!r}: expected name or name(args)", item, lead)


def parse_pipeline(spec: str | list[Any] | None, params_of: dict[str, list[str]]) -> list[StepCall]:
    """Turn a pipeline spec into step calls. ``params_of`` maps transform name → parameter names
    (used to tell ``map: {table...}`` keyword form from the value-table shorthand)."""
    if spec is None:
        return []
    if isinstance(spec, str):
        return [_parse_expr(part, off, None) for part, off in _split_pipes(spec)]
    steps: list[StepCall] = []
    for i, item in enumerate(spec):
        if isinstance(item, str):
            steps.extend(_parse_expr(part, off, i) for part, off in _split_pipes(item))
        elif isinstance(item, dict) and item:
            name, *extra = list(item.keys())
            if not isinstance(name, str):
                raise PipelineSyntaxError(f"a step's first key must be a transform name, got {name!r}", i)
            value = item[name]
            kwargs = {str(k): item[k] for k in extra}
            params = params_of.get(name, [])
            args: tuple[Any, ...] = ()
            if value is None:
                pass
            elif isinstance(value, dict) and value and all(k in params for k in value):
                kwargs = {**{str(k): v for k, v in value.items()}, **kwargs}
            elif isinstance(value, list):
                args = tuple(value)
            else:
                args = (value,)
            steps.append(StepCall(name, args, kwargs, i))
        else:
            raise PipelineSyntaxError(f"a step must be a name or a one-key mapping, got {item!r}", i)
    return steps
