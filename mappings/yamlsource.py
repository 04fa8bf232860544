"""YAML loading that remembers where every value came from.

PyYAML throws positions away once it builds Python objects, and pydantic reports errors by
location tuple (``('entities', 'customer', 'fields', 3, 'transform')``). Keeping a map from such
tuples to source marks lets every error say ``file:line:column`` — the difference between an
integrator fixing a typo in seconds and hunting for it.

Also refuses duplicate keys, which PyYAML silently resolves to the last one (a classic way to
lose a field mapping without noticing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    """A 1-based position; ``quote`` is the scalar's quote character, if any (for column maths)."""

    line: int
    column: int
    quote: str = ""


@dataclass
class SourceDoc:
    """A parsed YAML document with positions of each value and each mapping key."""

    file: str
    data: Any
    values: dict[Loc, Mark] = field(default_factory=dict)
    keys: dict[Loc, Mark] = field(default_factory=dict)
    duplicates: list[tuple[Loc, Mark, Mark]] = field(default_factory=list)

    def mark(self, loc: tuple[Any, ...], *, key: bool = False) -> Mark:
        """The mark of the deepest known location along ``loc`` (pydantic locs may add tags)."""
        best: Loc = ()
        current: Loc = ()
        for part in loc:
            candidate = (*current, part)
            if candidate in self.values:
                current = candidate
                best = current
        if key and best in self.keys:
            return self.keys[best]
        return self.values.get(best, Mark(1, 1))


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, mark: Mark) -> None:
        super().__init__(message)
        self.mark = mark


def load_yaml(text: str, file: str) -> SourceDoc:
    """Parse one YAML document, keeping marks; raise YamlSyntaxError with a position."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as exc:  # a control character: PyYAML refuses before parsing
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        raise YamlSyntaxError(
            f"YAML syntax: character {exc.character:#06x} is not allowed in YAML", Mark(line, column)
        ) from None
    try:
        node = loader.get_single_node()
        if node is None:
            return SourceDoc(file, None)
        data = loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        pm = exc.problem_mark
        mark = Mark(pm.line + 1, pm.column + 1) if pm is not None else Mark(1, 1)
        raise YamlSyntaxError(f"YAML syntax: {exc.problem or exc}", mark) from None
    except (ValueError, OverflowError) as exc:
        # a scalar that resolves to a type it cannot be (a timestamp in year 0): PyYAML raises
        # without a position; find the scalar, so the message still says file:line:column
        bad = _unreadable_scalar(node) if node is not None else None
        mark = _mark_of(bad) if bad is not None else Mark(1, 1)
        shown = f" {bad.value!r}" if bad is not None else ""
        kind = bad.tag.rsplit(":", 1)[-1] if bad is not None else "value"
        raise YamlSyntaxError(f"YAML value{shown} cannot be read as a {kind}: {exc}", mark) from None
    finally:
        loader.dispose()
    doc = SourceDoc(file, data)
    _walk(node, (), doc)
    return doc


def _unreadable_scalar(node: yaml.Node) -> yaml.ScalarNode | None:
    """The first scalar under ``node`` that PyYAML cannot construct, if any."""
    stack = [node]
    constructor = yaml.SafeLoader("")
    while stack:
        current = stack.pop(0)
        if isinstance(current, yaml.ScalarNode):
            try:
                constructor.construct_object(current)
            except (ValueError, OverflowError):
                return current
        elif isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                stack += [key_node, value_node]
        elif isinstance(current, yaml.SequenceNode):
            stack += list(current.value)
    return None


def _mark_of(node: yaml.Node) -> Mark:
    style = getattr(node, "style", None)
    quote = style if style in ("'", '"') else ""
    return Mark(node.start_mark.line + 1, node.start_mark.column + 1, quote)


def _walk(node: yaml.Node, loc: Loc, doc: SourceDoc) -> None:
    doc.values[loc] = _mark_of(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, Mark] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            if key in seen:
                doc.duplicates.append(((*loc, key), _mark_of(key_node), seen[key]))
            seen[key] = _mark_of(key_node)
            child = (*loc, key)
            doc.keys[child] = _mark_of(key_node)
            _walk(value_node, child, doc)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*loc, i), doc)
