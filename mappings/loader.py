"""Loading a mapping file: parse with positions, validate shape, check meaning, compile.

Every problem in a file is collected (not just the first) and reported as ``file:line:column:
message (hint)``, because an integrator fixing a mapping wants the whole list in one go.
"""

from __future__ import annotations

import difflib
from pathlib import Path as FsPath
from typing import Any

from pydantic import BaseModel, ValidationError

from core.model import ENTITIES
from mappings import canonical
from mappings.compiler import CompiledEntity, CompiledField, CompiledMapping, PipeStep, compile_entity
from mappings.errors import LoadIssue, MappingFileError, TransformArgError
from mappings.paths import Path, PathSyntaxError, each_count, format_path, parse_path
from mappings.pipeline import PipelineSyntaxError, StepCall, parse_pipeline
from mappings.registry import IDENTITY, all_transforms
from mappings.spec import KNOWN_SYSTEMS, RULE_WORDS, EntitySpec, FieldSpec, MappingSpec
from mappings.yamlsource import Loc, Mark, SourceDoc, YamlSyntaxError, load_yaml

SHIPPED_DIR = FsPath(__file__).resolve().parent


def shipped_mappings() -> list[FsPath]:
    """The mapping files shipped in ``mappings/`` (not their test files)."""
    return sorted(p for p in SHIPPED_DIR.glob("*.yaml") if not p.name.endswith(".test.yaml"))


def _hint(word: str, choices: list[str] | tuple[str, ...]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not close:
        return None
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


class _Issues:
    def __init__(self, doc: SourceDoc) -> None:
        self.doc = doc
        self.items: list[LoadIssue] = []

    def add(
        self, loc: Loc, message: str, hint: str | None = None, *, key: bool = False, offset: int | None = None
    ) -> None:
        """Record an issue at ``loc``; ``offset`` is a 0-based position inside a scalar's text."""
        mark = self.doc.mark(loc, key=key)
        column = mark.column
        if offset is not None and mark.quote in ("", "'", '"'):
            column += offset + (1 if mark.quote else 0)
        self.items.append(LoadIssue(self.doc.file, mark.line, column, message, hint))


def _model_for(loc: tuple[Any, ...], root: type[BaseModel]) -> type[BaseModel]:
    """The schema model an error location falls in, walking field annotations from ``root``
    (lists and dicts are stepped through), for 'unknown key' suggestions."""
    model = root
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            continue  # a list index or a dict key: the model stays the element's
        found = _models_in(field.annotation)
        if found:
            model = found[0]
    return model


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in getattr(annotation, "__args__", ()) or ():
        out.extend(_models_in(arg))
    return out


def report_validation_error(exc: ValidationError, issues: _Issues, root: type[BaseModel] = MappingSpec) -> None:
    seen: set[tuple[Any, ...]] = set()
    for err in exc.errors():
        loc = tuple(err["loc"])
        if err["type"] == "extra_forbidden":
            model = _model_for(loc, root)
            key = str(loc[-1])
            issues.add(loc, f"unknown key {key!r}", _hint(key, list(model.model_fields)), key=True)
            continue
        real = _data_loc(loc, issues.doc)
        if real in seen:
            continue
        seen.add(real)
        if err["type"] == "missing":
            issues.add(real, f"missing required key {loc[-1]!r}")
            continue
        hint = None
        expected = (err.get("ctx") or {}).get("expected")
        if isinstance(expected, str) and isinstance(err.get("input"), str):
            words = [w.strip(" '") for w in expected.replace(" or ", ",").split(",")]
            hint = _hint(err["input"], words)
        where = ".".join(str(p) for p in real)
        issues.add(real, f"{where}: {err['msg']}", hint)


def _data_loc(loc: tuple[Any, ...], doc: SourceDoc) -> Loc:
    out: list[str | int] = []
    for part in loc:
        if (*out, part) in doc.values:
            out.append(part)
    return tuple(out)


def _parse_path_at(issues: _Issues, loc: Loc, text: str, what: str) -> Path | None:
    try:
        return parse_path(text)
    except PathSyntaxError as exc:
        issues.add(loc, f"bad {what} path {text!r}: {exc}", offset=exc.offset)
        return None


def _check_canonical(issues: _Issues, loc: Loc, entity: str, text: str) -> Path | None:
    path = _parse_path_at(issues, loc, text, "canonical")
    if path is None:
        return None
    _, problem = canonical.resolve(entity, path)
    if problem is not None:
        offset = len(format_path(path[: problem.step])) + (1 if problem.step else 0)
        hint = None
        if problem.suggestions:
            hint = "did you mean " + " or ".join(repr(s) for s in problem.suggestions) + "?"
        issues.add(loc, f"canonical path {text!r}: {problem.message}", hint, offset=offset)
        return None
    return path


def _bind_pipeline(
    issues: _Issues, loc: Loc, spec: Any, names: dict[str, Any], params: dict[str, list[str]]
) -> list[tuple[StepCall, Any]] | None:
    try:
        calls = parse_pipeline(spec, params)
    except PipelineSyntaxError as exc:
        at = (*loc, exc.item) if exc.item is not None else loc
        issues.add(at, str(exc), offset=exc.offset if isinstance(spec, str) else None)
        return None
    bound: list[tuple[StepCall, Any]] = []
    ok = True
    for call in calls:
        at = (*loc, call.item) if call.item is not None else loc
        off = call.offset if isinstance(spec, str) or isinstance(spec[call.item or 0], str) else None
        definition = names.get(call.name)
        if definition is None:
            issues.add(at, f"unknown transform {call.name!r}", _hint(call.name, list(names)), offset=off)
            ok = False
            continue
        try:
            bound.append((call, definition.bind(call.args, call.kwargs)))
        except TransformArgError as exc:
            issues.add(at, str(exc), offset=off)
            ok = False
    return bound if ok else None


def _in_steps(bound: list[tuple[StepCall, Any]]) -> tuple[PipeStep, ...]:
    return tuple(PipeStep(b.label, b.step, b.definition.accepts_none, b.definition.context, b) for _, b in bound)


def _derive_out(issues: _Issues, loc: Loc, bound: list[tuple[StepCall, Any]]) -> tuple[PipeStep, ...] | None:
    """The way out of a ``both`` field: inverses in reverse order; None (with an issue) if impossible."""
    out: list[PipeStep] = []
    for _, b in reversed(bound):
        try:
            inv = b.inverse_step()
        except TransformArgError as exc:
            issues.add(
                loc,
                f"field is `both` but {b.label} cannot be reversed: {exc}",
                "set direction: in, or add an out_transform",
            )
            return None
        if inv is None:
            issues.add(
                loc,
                f"field is `both` but transform {b.name!r} has no inverse",
                "add an out_transform for the way out, or set direction: in",
            )
            return None
        if inv is IDENTITY:
            continue
        out.append(PipeStep(f"inverse of {b.label}", inv, b.definition.accepts_none, b.definition.context, b))
    return tuple(out)


def _check_owner(issues: _Issues, loc: Loc, owner: str, system: str) -> None:
    allowed = (*RULE_WORDS, *KNOWN_SYSTEMS, system)
    if owner not in allowed:
        issues.add(
            loc,
            f"unknown owner {owner!r}: use hub, newest, fill, union, manual or a system name",
            _hint(owner, list(dict.fromkeys(allowed))),
        )


def _check_field(
    issues: _Issues,
    loc: Loc,
    index: int,
    entity: str,
    system: str,
    spec: FieldSpec,
    names: dict[str, Any],
    params: dict[str, list[str]],
) -> CompiledField | None:
    start = len(issues.items)
    cpath = _check_canonical(issues, (*loc, "canonical"), entity, spec.canonical) if spec.canonical else None
    npath = _parse_path_at(issues, (*loc, "native"), spec.native, "native") if spec.native else None
    _check_owner(issues, (*loc, "owner"), spec.owner, system)
    pipe = _bind_pipeline(issues, (*loc, "transform"), spec.transform, names, params)
    out_pipe = (
        _bind_pipeline(issues, (*loc, "out_transform"), spec.out_transform, names, params)
        if spec.out_transform is not None
        else None
    )
    builds_from_record = any(b.definition.context and b.definition.accepts_none for _, b in pipe or [])
    if spec.canonical is None and not (spec.direction == "out" and builds_from_record):
        issues.add(loc, "field has no `canonical` path", "only an `out` field built with template() may leave it out")
    if spec.native is None and not (spec.direction == "in" and builds_from_record):
        issues.add(loc, "field has no `native` path", "only an `in` field built with template() may leave it out")
    if spec.direction != "both" and spec.out_transform is not None:
        issues.add(
            (*loc, "out_transform"),
            f"out_transform is only used on `both` fields (this one is {spec.direction})",
            "on an `out` field, put the pipeline under `transform`",
        )
    if cpath is not None and npath is not None and each_count(cpath) != each_count(npath):
        issues.add(loc, f"canonical {spec.canonical!r} and native {spec.native!r} must have the same number of []")
    if (cpath is not None and cpath[-1].kind == "select") or (npath is not None and npath[-1].kind == "select"):
        issues.add(loc, "a path cannot end with [key=value]; name a field of the selected element")
    if len(issues.items) > start or pipe is None:
        return None
    in_steps: tuple[PipeStep, ...] = ()
    out_steps: tuple[PipeStep, ...] = ()
    if spec.direction == "in":
        in_steps = _in_steps(pipe)
    elif spec.direction == "out":
        out_steps = _in_steps(pipe)
    else:
        in_steps = _in_steps(pipe)
        if out_pipe is not None:
            out_steps = _in_steps(out_pipe)
        else:
            derived = _derive_out(issues, (*loc, "transform"), pipe)
            if derived is None:
                return None
            out_steps = derived
    return CompiledField(
        index=index,
        entity=entity,
        canonical=spec.canonical,
        native=spec.native,
        canonical_path=cpath,
        native_path=npath,
        direction=spec.direction,
        owner=spec.owner,
        required=spec.required,
        in_steps=in_steps,
        out_steps=out_steps,
        description=spec.description,
    )


def _check_collisions(issues: _Issues, loc: Loc, fields: list[CompiledField]) -> None:
    """Two fields writing one target in the same direction is a copy-paste slip, not a feature."""
    for direction in ("in", "out"):
        seen: dict[str, int] = {}
        for f in fields:
            if f.direction not in (direction, "both"):
                continue
            target = f.canonical if direction == "in" else f.native
            if target is None:
                continue
            if target in seen:
                side = "canonical" if direction == "in" else "native"
                issues.add(
                    (*loc, f.index),
                    f"{side} path {target!r} is also written by field #{seen[target] + 1} on the way {direction}",
                    "set direction on one of them",
                )
            else:
                seen[target] = f.index
    owners: dict[str, tuple[str, int]] = {}
    for f in fields:
        unit = f.merge_unit
        if unit is None or f.canonical is None or "[]" not in f.canonical:
            continue
        if unit in owners and owners[unit][0] != f.owner:
            issues.add(
                (*loc, f.index, "owner"),
                f"fields of the array {unit}[] must share one owner "
                f"(field #{owners[unit][1] + 1} says {owners[unit][0]!r})",
            )
        owners.setdefault(unit, (f.owner, f.index))


def _check_entity(
    issues: _Issues, system: str, name: str, spec: EntitySpec, names: dict[str, Any], params: dict[str, list[str]]
) -> CompiledEntity | None:
    loc: Loc = ("entities", name)
    if name not in ENTITIES:
        issues.add(loc, f"unknown entity {name!r}", _hint(name, list(ENTITIES)), key=True)
        return None
    start = len(issues.items)
    id_path = _parse_path_at(issues, (*loc, "id"), spec.id, "id")
    upd = _parse_path_at(issues, (*loc, "updated_at"), spec.updated_at, "updated_at") if spec.updated_at else None
    for i, ident in enumerate(spec.identity):
        for part in ident.split("+"):  # "sku+location": one key made of several fields together
            _check_canonical(issues, (*loc, "identity", i), name, part.strip())
    fields: list[CompiledField] = []
    for i, fspec in enumerate(spec.fields):
        compiled = _check_field(issues, (*loc, "fields", i), i, name, system, fspec, names, params)
        if compiled is not None:
            fields.append(compiled)
    _check_collisions(issues, (*loc, "fields"), fields)
    if len(issues.items) > start or id_path is None:
        return None
    entity = CompiledEntity(
        system=system,
        entity=name,
        native_object=spec.native,
        id_path=id_path,
        updated_at_path=upd,
        identity=tuple(spec.identity),
        on_delete=spec.on_delete,
        fields=fields,
    )
    return compile_entity(entity)


def check_text(text: str, file: str) -> tuple[CompiledMapping | None, list[LoadIssue]]:
    """Load mapping YAML ``text`` (named ``file`` in messages): the compiled mapping or the issues."""
    try:
        doc = load_yaml(text, file)
    except YamlSyntaxError as exc:
        return None, [LoadIssue(file, exc.mark.line, exc.mark.column, str(exc))]
    issues = _Issues(doc)
    for loc, mark, first in doc.duplicates:
        issues.items.append(
            LoadIssue(file, mark.line, mark.column, f"duplicate key {loc[-1]!r} (first at line {first.line})")
        )
    if not isinstance(doc.data, dict):
        issues.add((), "a mapping file must be a YAML mapping with `system` and `entities`")
        return None, issues.items
    try:
        spec = MappingSpec.model_validate(doc.data)
    except ValidationError as exc:
        report_validation_error(exc, issues)
        return None, issues.items
    transforms = all_transforms()
    params = {n: [p.name for p in d.params] for n, d in transforms.items()}
    entities: dict[str, CompiledEntity] = {}
    for name, espec in spec.entities.items():
        compiled = _check_entity(issues, spec.system, name, espec, transforms, params)
        if compiled is not None:
            entities[name] = compiled
    if issues.items:
        return None, issues.items
    return CompiledMapping(spec.system, file, entities), []


def check_file(path: str | FsPath) -> tuple[CompiledMapping | None, list[LoadIssue]]:
    p = FsPath(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, [LoadIssue(str(p), 1, 1, f"cannot read file: {exc}")]
    return check_text(text, str(p))


def load_mapping(path: str | FsPath) -> CompiledMapping:
    """Load and compile a mapping file, or raise MappingFileError listing every problem."""
    mapping, issues = check_file(path)
    if mapping is None:
        raise MappingFileError(issues)
    return mapping


__all__ = ["Mark", "check_file", "check_text", "load_mapping", "shipped_mappings"]
