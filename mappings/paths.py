"""Path syntax shared by canonical and native paths: ``a.b``, ``a[]``, ``a[0]``, ``a[key=value]``.

Parsed once at load time into tuples of steps; the compiler turns them into inline code, and the
slow helpers here (``get_path``/``set_path``) serve diagnostics, tests and tools where speed does
not matter.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal


class _Missing:
    """Marks a key that is absent (unknown), as opposed to present and null (cleared)."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


MISSING: Final = _Missing()

StepKind = Literal["key", "each", "index", "select"]


@dataclass(frozen=True)
class Step:
    """One step of a path. ``key`` for ``key`` and ``select`` steps' field; ``arg`` for the rest."""

    kind: StepKind
    key: str = ""
    index: int = 0
    value: str = ""

    def __str__(self) -> str:
        if self.kind == "key":
            return self.key
        if self.kind == "each":
            return "[]"
        if self.kind == "index":
            return f"[{self.index}]"
        return f"[{self.key}={self.value}]"


Path = tuple[Step, ...]


class PathSyntaxError(ValueError):
    """A path string could not be parsed; ``offset`` is the 0-based character position."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


_KEY = re.compile(r"[A-Za-z_$@][\w$@:\-]*")
_BRACKET = re.compile(r"\[(?:(?P<index>\d+)|(?P<skey>[A-Za-z_][\w\-]*)=(?P<svalue>[^\]]*))?\]")


def parse_path(text: str) -> Path:
    """Parse ``text`` into steps, or raise PathSyntaxError pointing at the offending character.

    Parsed paths are cached: the sync core names the same few hundred field paths for every record."""
    if not isinstance(text, str) or not text:
        raise PathSyntaxError("a path must be a non-empty string", 0)
    return _parse_path(text)


@functools.lru_cache(maxsize=8192)
def _parse_path(text: str) -> Path:
    steps: list[Step] = []
    pos = 0
    expect_key = True
    while pos < len(text):
        if expect_key:
            m = _KEY.match(text, pos)
            if not m:
                raise PathSyntaxError(f"expected a field name at {text[pos:]!r}", pos)
            steps.append(Step("key", key=m.group(0)))
            pos = m.end()
            expect_key = False
            continue
        ch = text[pos]
        if ch == ".":
            pos += 1
            expect_key = True
            if pos == len(text):
                raise PathSyntaxError("a path cannot end with '.'", pos - 1)
            continue
        if ch == "[":
            b = _BRACKET.match(text, pos)
            if not b:
                raise PathSyntaxError("expected [], [N] or [key=value]", pos)
            if b.group("index") is not None:
                steps.append(Step("index", index=int(b.group("index"))))
            elif b.group("skey") is not None:
                steps.append(Step("select", key=b.group("skey"), value=b.group("svalue")))
            else:
                steps.append(Step("each"))
            pos = b.end()
            continue
        raise PathSyntaxError(f"unexpected {ch!r}", pos)
    return tuple(steps)


def format_path(path: Path) -> str:
    out = ""
    for step in path:
        if step.kind == "key":
            out += ("." if out else "") + step.key
        else:
            out += str(step)
    return out


def each_count(path: Path) -> int:
    return sum(1 for s in path if s.kind == "each")


def split_at_each(path: Path) -> tuple[Path, Path] | None:
    """``lines[].sku`` → (``lines``, ``sku``); None when the path has no ``[]``."""
    for i, step in enumerate(path):
        if step.kind == "each":
            return path[:i], path[i + 1 :]
    return None


def get_path(record: Any, path: Path, indexes: tuple[int, ...] = ()) -> Any:
    """Slow, interpreted read of ``path``; ``[]`` steps take the given ``indexes`` in turn.

    Returns MISSING for an absent key, None when an intermediate value is null.
    """
    value = record
    pending = list(indexes)
    for step in path:
        if value is MISSING or value is None:
            return value
        if step.kind == "key":
            if not isinstance(value, dict):
                raise TypeError(f"expected an object before {step.key!r}, got {type(value).__name__}")
            value = value.get(step.key, MISSING)
        elif step.kind in ("index", "each"):
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            idx = step.index if step.kind == "index" else (pending.pop(0) if pending else 0)
            value = value[idx] if idx < len(value) else None
        else:
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            value = select(value, step.key, step.value)
    return value


def getter(path: Path) -> Callable[[Any], Any]:
    """``get_path(record, path)`` as a function of the record, the steps walked without interpreting.

    Why: the sync core reads every merge unit of a record at least twice per change (the units in,
    the values out per target); most units are a key or two, and interpreting their steps each
    time was a twentieth of a change's CPU. One or two keys, on dictionaries, are read with no loop
    at all (60 reads per created customer in bench/throughput); anything else takes the loop."""
    if not path or any(s.kind not in ("key", "index") for s in path):
        return lambda record: get_path(record, path)
    steps = tuple((s.kind == "key", s.key, s.index) for s in path)

    def read(record: Any) -> Any:
        value = record
        for is_key, key, index in steps:
            if value is MISSING or value is None:
                return value
            if is_key:
                if not isinstance(value, dict):
                    raise TypeError(f"expected an object before {key!r}, got {type(value).__name__}")
                value = value.get(key, MISSING)
            else:
                if not isinstance(value, list):
                    raise TypeError(f"expected an array, got {type(value).__name__}")
                value = value[index] if index < len(value) else None
        return value

    if all(is_key for is_key, _, _ in steps) and len(steps) <= 2:
        first = steps[0][1]
        if len(steps) == 1:

            def read_key(record: Any) -> Any:
                if type(record) is dict:
                    return record.get(first, MISSING)
                return read(record)  # MISSING, None, or the error

            return read_key
        second = steps[1][1]

        def read_keys(record: Any) -> Any:
            if type(record) is dict:
                inner = record.get(first, MISSING)
                if type(inner) is dict:
                    return inner.get(second, MISSING)
            return read(record)

        return read_keys
    return read


def setter(path: Path) -> Callable[[dict[str, Any], Any], None]:
    """``set_path(record, path, value)`` as a function of the record and value: for a path of keys
    whose containers are all there, the keys walked without interpreting; otherwise ``set_path``."""
    if not path or any(s.kind != "key" for s in path):
        return lambda record, value: set_path(record, path, value)
    *parents, last = (s.key for s in path)

    def write(record: dict[str, Any], value: Any) -> None:
        container = record
        for key in parents:
            inner = container.get(key)
            if type(inner) is not dict:  # absent, null or a list: set_path makes or walks it
                set_path(record, path, value)
                return
            container = inner
        container[last] = value

    return write


@functools.lru_cache(maxsize=8192)
def unit_access(text: str) -> tuple[Callable[[Any], Any], Callable[[dict[str, Any], Any], None]]:
    """(read, write) of the path ``text``, made once: the sync core reads and writes the same few
    hundred merge units for every record."""
    path = parse_path(text)
    return getter(path), setter(path)


def set_path(record: dict[str, Any], path: Path, value: Any) -> None:
    """Slow, interpreted write of ``value`` at ``path``, creating containers on the way.

    ``[]`` steps write to the first element (tests and tools use this to build sample records).
    """
    container: Any = record
    for i, step in enumerate(path):
        last = i == len(path) - 1
        nxt = path[i + 1] if not last else None
        fresh: Any = [] if nxt is not None and nxt.kind != "key" else {}
        if step.kind == "key":
            if last:
                container[step.key] = value
                return
            if not isinstance(container.get(step.key), dict | list):
                container[step.key] = fresh
            container = container[step.key]
        elif step.kind in ("index", "each"):
            idx = step.index if step.kind == "index" else 0
            container = list_slot(container, idx, value if last else MISSING, fresh)
            if last:
                return
        else:
            container = select_or_append(container, step.key, step.value)


def select(items: list[Any], key: str, value: str) -> Any:
    """First element whose ``key`` equals ``value`` (compared as strings), or None."""
    for item in items:
        if isinstance(item, dict) and str(item.get(key)) == value:
            return item
    return None


def select_or_append(items: list[Any], key: str, value: str) -> dict[str, Any]:
    """The element ``select`` would find; appended as ``{key: value}`` when absent."""
    found = select(items, key, value)
    if found is None:
        found = {key: value}
        items.append(found)
    return found  # type: ignore[no-any-return]


def list_slot(items: list[Any], index: int, value: Any, fresh: Any) -> Any:
    """Set ``items[index]`` (padding with None) to ``value``, or to ``fresh`` if MISSING and empty."""
    while len(items) <= index:
        items.append(None)
    if value is not MISSING:
        items[index] = value
        return value
    if items[index] is None:
        items[index] = fresh
    return items[index]
