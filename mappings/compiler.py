"""Compiles a validated mapping into plain Python functions, once, at load time.

Why code generation rather than a loop over field specs: the per-record cost is then exactly the
dictionary reads, the transform calls and the writes — no interpretation of paths, no dispatch on
step kinds. For each entity and direction the compiler writes one function's source (kept on the
object as ``source_in``/``source_out`` for anyone curious) and ``exec``\\ s it with the bound
transforms as globals. Paths and keys enter the source only through ``repr()`` of strings the
loader has already checked against the path grammar, never as raw text.

Errors cost nothing until they happen: each field runs in its own ``try``; on failure a slow
path re-walks the record step by step to name the failing transform and the value it saw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mappings.errors import FieldError, RecordMappingError
from mappings.paths import (
    MISSING,
    Path,
    format_path,
    get_path,
    list_slot,
    select,
    select_or_append,
    split_at_each,
)
from mappings.registry import BoundTransform, Context, Resolver


@dataclass(frozen=True)
class PipeStep:
    """One runnable step of a direction's pipeline."""

    label: str
    fn: Callable[..., Any]
    accepts_none: bool
    context: bool
    transform: BoundTransform | None = None
    """The bound transform this step runs (its inverse, on a derived way out)."""


class _RequiredMissing(Exception):
    pass


@dataclass
class CompiledField:
    """A field as the compiler and the sync core need it (paths parsed, pipelines bound)."""

    index: int
    entity: str
    canonical: str | None
    native: str | None
    canonical_path: Path | None
    native_path: Path | None
    direction: str
    owner: str
    required: bool
    in_steps: tuple[PipeStep, ...]
    out_steps: tuple[PipeStep, ...]
    description: str | None = None

    @property
    def merge_unit(self) -> str | None:
        """The canonical unit a merge compares: the path, cut at its first ``[]``."""
        if self.canonical is None:
            return None
        return self.canonical.split("[]", 1)[0]

    @property
    def label(self) -> str:
        return self.canonical or f"<{self.native}>"


@dataclass
class CompiledEntity:
    """One entity of one system, compiled: call ``to_canonical`` / ``to_native`` per record."""

    system: str
    entity: str
    native_object: str
    id_path: Path
    updated_at_path: Path | None
    identity: tuple[str, ...]
    on_delete: str
    fields: list[CompiledField]
    source_in: str = ""
    source_out: str = ""
    _in: Callable[..., tuple[dict[str, Any], list[FieldError] | None]] | None = None
    _out: Callable[..., tuple[dict[str, Any], list[FieldError] | None]] | None = None
    owners: dict[str, str] = field(default_factory=dict)

    def to_canonical(self, record: Mapping[str, Any], resolver: Resolver | None = None) -> dict[str, Any]:
        """Native record → partial canonical record; RecordMappingError lists every failed field."""
        return self._strict("in", record, resolver)

    def to_native(self, record: Mapping[str, Any], resolver: Resolver | None = None) -> dict[str, Any]:
        """Canonical record → native record for this system; RecordMappingError on failures."""
        return self._strict("out", record, resolver)

    def _strict(self, direction: str, record: Mapping[str, Any], resolver: Resolver | None) -> dict[str, Any]:
        out, errors = self.map(record, direction, resolver)
        if errors:
            raise RecordMappingError(errors, out)
        return out

    def map(
        self, record: Mapping[str, Any], direction: str = "in", resolver: Resolver | None = None
    ) -> tuple[dict[str, Any], list[FieldError]]:
        """Map without raising: the partial result and the (possibly empty) list of field errors."""
        fn = self._in if direction == "in" else self._out
        assert fn is not None
        out, errors = fn(record, resolver)
        return out, errors or []

    def native_id(self, record: Mapping[str, Any]) -> str | None:
        value = get_path(record, self.id_path)
        return None if value is None or value is MISSING else str(value)

    def source_timestamp(self, record: Mapping[str, Any]) -> datetime | None:
        """The record's last-modified time in UTC, for the ``newest`` rule; None if unknown."""
        if self.updated_at_path is None:
            return None
        value = get_path(record, self.updated_at_path)
        if value is None or value is MISSING:
            return None
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        return parsed.astimezone(UTC)

    def fields_for(self, direction: str) -> list[CompiledField]:
        return [f for f in self.fields if f.direction in (direction, "both")]


@dataclass
class CompiledMapping:
    """A whole mapping file, compiled. ``entities`` by canonical entity name."""

    system: str
    file: str
    entities: dict[str, CompiledEntity]

    def entity(self, name: str) -> CompiledEntity:
        try:
            return self.entities[name]
        except KeyError:
            known = ", ".join(sorted(self.entities))
            raise KeyError(f"{self.file} maps no entity {name!r} (it maps: {known})") from None


# --- code generation -----------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.counter = 0

    def emit(self, depth: int, text: str) -> None:
        self.lines.append("    " * depth + text)

    def var(self, stem: str) -> str:
        self.counter += 1
        return f"{stem}{self.counter}"


@dataclass
class _Group:
    src_prefix: Path
    dst_prefix: Path
    items: list[_Item]


@dataclass
class _Leaf:
    field: CompiledField
    src: Path | None
    dst: Path | None


_Item = _Leaf | _Group


def _tree(fields: list[tuple[CompiledField, Path | None, Path | None]]) -> list[_Item]:
    """Group fields by their first ``[]`` so each array is walked once for all its fields."""
    items: list[_Item] = []
    groups: dict[tuple[Path, Path], list[tuple[CompiledField, Path | None, Path | None]]] = {}
    order: list[tuple[Path, Path]] = []
    for f, src, dst in fields:
        s = split_at_each(src) if src is not None else None
        d = split_at_each(dst) if dst is not None else None
        if s is None or d is None:
            items.append(_Leaf(f, src, dst))
            continue
        key = (s[0], d[0])
        if key not in groups:
            groups[key] = []
            order.append(key)
            items.append(_Group(s[0], d[0], []))
        groups[key].append((f, s[1], d[1]))
    for item in items:
        if isinstance(item, _Group):
            item.items = _tree(groups[(item.src_prefix, item.dst_prefix)])
    return items


def _emit_get(w: _Writer, depth: int, src: str, path: Path, var: str) -> None:
    """``var`` = value at ``path`` under ``src``: MISSING if a key is absent, None if a parent is null."""
    if not path:
        w.emit(depth, f"{var} = {src}")
        return
    first, rest = path[0], path[1:]
    w.emit(depth, f"{var} = {src}.get({first.key!r}, _M)")
    for step in rest:
        w.emit(depth, f"if {var} is not _M and {var} is not None:")
        depth += 1
        if step.kind == "key":
            w.emit(depth, f"{var} = {var}.get({step.key!r}, _M)")
        elif step.kind == "index":
            w.emit(depth, f"{var} = {var}[{step.index}] if len({var}) > {step.index} else None")
        elif step.kind == "select":
            w.emit(depth, f"{var} = _sel({var}, {step.key!r}, {step.value!r})")
        else:  # pragma: no cover - the tree splits at every "each"
            raise AssertionError("unexpected [] in a leaf path")


def _emit_set(w: _Writer, depth: int, dst: str, path: Path, value: str) -> None:
    """Write ``value`` at ``path`` under ``dst``, creating objects and arrays on the way."""
    container = dst
    for i, step in enumerate(path):
        last = i == len(path) - 1
        nxt = None if last else path[i + 1]
        fresh = "[]" if nxt is not None and nxt.kind != "key" else "{}"
        if step.kind == "key":
            if last:
                w.emit(depth, f"{container}[{step.key!r}] = {value}")
                return
            child = w.var("c")
            w.emit(depth, f"{child} = {container}.get({step.key!r})")
            w.emit(depth, f"if {child} is None:")
            w.emit(depth + 1, f"{child} = {container}[{step.key!r}] = {fresh}")
            container = child
        elif step.kind == "index":
            if last:
                w.emit(depth, f"_slot({container}, {step.index}, {value}, None)")
                return
            child = w.var("c")
            w.emit(depth, f"{child} = _slot({container}, {step.index}, _M, {fresh})")
            container = child
        else:
            child = w.var("c")
            w.emit(depth, f"{child} = _soa({container}, {step.key!r}, {step.value!r})")
            container = child


def _emit_leaf(
    w: _Writer,
    depth: int,
    leaf: _Leaf,
    src: str,
    dst: str,
    idx: list[str],
    direction: str,
    names: dict[str, Any],
    scalar_dst: str | None,
) -> None:
    f = leaf.field
    steps = f.in_steps if direction == "in" else f.out_steps
    accepts_none = any(s.accepts_none for s in steps)
    idx_tuple = "(" + "".join(f"{i}, " for i in idx) + ")"
    w.emit(depth, "try:")
    d = depth + 1
    if leaf.src is None:
        w.emit(d, "v = None")
    else:
        _emit_get(w, d, src, leaf.src, "v")
    if accepts_none:
        w.emit(d, "if v is _M:")
        w.emit(d + 1, "v = None")
        body = d
    elif f.required:
        w.emit(d, "if v is _M:")
        w.emit(d + 1, "raise _REQ")
        body = d
    else:
        w.emit(d, "if v is not _M:")
        body = d + 1
    for k, step in enumerate(steps):
        name = f"S{f.index}_{direction}_{k}"
        names[name] = step.fn
        call = f"{name}(v, ctx)" if step.context else f"{name}(v)"
        if step.accepts_none:
            w.emit(body, f"v = {call}")
        else:  # every step may return None (empty_to_none, a map to null): guard each one
            w.emit(body, "if v is not None:")
            w.emit(body + 1, f"v = {call}")
    if f.required:
        w.emit(body, "if v is None:")
        w.emit(body + 1, "raise _REQ")
    if scalar_dst is not None:
        w.emit(body, f"{scalar_dst} = v")
    else:
        assert leaf.dst is not None
        _emit_set(w, body, dst, leaf.dst, "v")
    w.emit(depth, "except Exception as exc:")
    w.emit(depth + 1, f"errs = _fail(errs, {f.index}, {direction!r}, exc, rec, resolver, {idx_tuple})")


def _emit_items(
    w: _Writer,
    depth: int,
    items: list[_Item],
    src: str,
    dst: str,
    idx: list[str],
    direction: str,
    names: dict[str, Any],
) -> None:
    for item in items:
        if isinstance(item, _Leaf):
            _emit_leaf(w, depth, item, src, dst, idx, direction, names, None)
            continue
        arr, lst, i, it, o = w.var("a"), w.var("l"), w.var("i"), w.var("it"), w.var("o")
        first = _first_leaf(item)
        idx_tuple = "(" + "".join(f"{x}, " for x in idx) + ")"
        w.emit(depth, "try:")
        _emit_get(w, depth + 1, src, item.src_prefix, arr)
        w.emit(depth + 1, f"if {arr} is not _M and {arr} is not None and {arr}.__class__ is not list:")
        w.emit(depth + 2, f"raise TypeError('expected an array, got ' + type({arr}).__name__)")
        w.emit(depth, "except Exception as exc:")
        w.emit(depth + 1, f"errs = _fail(errs, {first.index}, {direction!r}, exc, rec, resolver, {idx_tuple})")
        w.emit(depth + 1, f"{arr} = _M")
        w.emit(depth, f"if {arr} is None:")
        _emit_set(w, depth + 1, dst, item.dst_prefix, "[]")
        w.emit(depth, f"elif {arr} is not _M:")
        w.emit(depth + 1, f"{lst} = []")
        w.emit(depth + 1, f"for {i}, {it} in enumerate({arr}):")
        scalar = [x for x in item.items if isinstance(x, _Leaf) and not x.dst]
        if scalar:
            w.emit(depth + 2, f"{o} = _M")
            _emit_leaf(w, depth + 2, scalar[0], it, o, [*idx, i], direction, names, o)
            w.emit(depth + 2, f"if {o} is not _M:")
            w.emit(depth + 3, f"{lst}.append({o})")
        else:
            w.emit(depth + 2, f"{o} = {{}}")
            _emit_items(w, depth + 2, item.items, it, o, [*idx, i], direction, names)
            w.emit(depth + 2, f"{lst}.append({o})")
        _emit_set(w, depth + 1, dst, item.dst_prefix, lst)


def _first_leaf(group: _Group) -> CompiledField:
    for item in group.items:
        if isinstance(item, _Leaf):
            return item.field
        return _first_leaf(item)
    raise AssertionError("empty array group")


def compile_direction(entity: CompiledEntity, direction: str) -> tuple[str, Callable[..., Any]]:
    """Generate and exec the function mapping one record of ``entity`` in ``direction``."""
    fields = entity.fields_for(direction)
    pairs: list[tuple[CompiledField, Path | None, Path | None]] = []
    for f in fields:
        if direction == "in":
            pairs.append((f, f.native_path, f.canonical_path))
        else:
            pairs.append((f, f.canonical_path, f.native_path))
    needs_ctx = any(s.context for f in fields for s in (f.in_steps if direction == "in" else f.out_steps))
    w = _Writer()
    names: dict[str, Any] = {
        "_M": MISSING,
        "_sel": select,
        "_soa": select_or_append,
        "_slot": list_slot,
        "_REQ": _RequiredMissing(),
        "_Ctx": Context,
        "_fail": _make_fail(entity),
        "SYSTEM": entity.system,
    }
    w.emit(0, "def mapped(rec, resolver=None):")
    w.emit(1, "out = {}")
    w.emit(1, "errs = None")
    if needs_ctx:
        w.emit(1, "ctx = _Ctx(rec, SYSTEM, resolver)")
    _emit_items(w, 1, _tree(pairs), "rec", "out", [], direction, names)
    w.emit(1, "return out, errs")
    source = "\n".join(w.lines) + "\n"
    code = compile(source, f"<mapping {entity.system}.{entity.entity} {direction}>", "exec")
    exec(code, names)  # noqa: S102 - source built above from checked paths and repr()'d keys
    return source, names["mapped"]


def compile_entity(entity: CompiledEntity) -> CompiledEntity:
    entity.source_in, entity._in = compile_direction(entity, "in")
    entity.source_out, entity._out = compile_direction(entity, "out")
    for f in entity.fields:
        unit = f.merge_unit
        if unit is not None:
            entity.owners.setdefault(unit, f.owner)
    return entity


# --- the slow path: name the failing step --------------------------------------------------------


def _make_fail(entity: CompiledEntity) -> Callable[..., list[FieldError]]:
    by_index = {f.index: f for f in entity.fields}

    def fail(
        errs: list[FieldError] | None,
        index: int,
        direction: str,
        exc: Exception,
        rec: Any,
        resolver: Resolver | None,
        idxs: tuple[int, ...],
    ) -> list[FieldError]:
        f = by_index[index]
        errs = errs if errs is not None else []
        errs.append(diagnose(entity, f, direction, exc, rec, resolver, idxs))
        return errs

    return fail


def _fill_indexes(path: Path | None, idxs: tuple[int, ...]) -> str:
    if path is None:
        return "(none)"
    text = format_path(path)
    for i in idxs:
        text = text.replace("[]", f"[{i}]", 1)
    return text


def diagnose(
    entity: CompiledEntity,
    f: CompiledField,
    direction: str,
    exc: Exception,
    rec: Any,
    resolver: Resolver | None,
    idxs: tuple[int, ...],
) -> FieldError:
    """Re-run one field step by step to find which transform failed and on what value."""
    src_path = f.native_path if direction == "in" else f.canonical_path
    field_label = _fill_indexes(f.canonical_path, idxs) if f.canonical_path else f.label
    native_label = _fill_indexes(f.native_path, idxs)

    def error(value: Any, transform: str | None, message: str) -> FieldError:
        return FieldError(entity.entity, field_label, native_label, value, transform, message, direction)

    try:
        value = None if src_path is None else get_path(rec, src_path, idxs)
    except (TypeError, AttributeError, IndexError) as shape:
        return error(None, None, f"unexpected shape: {shape}")
    if isinstance(exc, _RequiredMissing):
        return error(None if value is MISSING else value, None, "required value is missing")
    if value is MISSING:
        value = None
    ctx = Context(rec, entity.system, resolver)
    steps = f.in_steps if direction == "in" else f.out_steps
    for step in steps:
        if value is None and not step.accepts_none:
            continue
        try:
            value = step.fn(value, ctx) if step.context else step.fn(value)
        except Exception as step_exc:
            return error(value, step.label, str(step_exc) or type(step_exc).__name__)
    return error(value, None, f"{type(exc).__name__}: {exc}")
