"""Mapping test files (``<name>.test.yaml``): realistic records and what they must map to.

Integrators edit shipped mappings; these files are how they know they did not break them. The
same runner serves ``synchub mappings test`` and the project's own test suite.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path as FsPath
from typing import Any

from pydantic import ValidationError

from mappings import canonical
from mappings.compiler import CompiledMapping
from mappings.errors import FieldError, LoadIssue
from mappings.loader import _Issues, check_file, report_validation_error
from mappings.spec import CaseSpec, MappingTestSpec
from mappings.yamlsource import YamlSyntaxError, load_yaml


def companion_test_file(mapping_path: str | FsPath) -> FsPath:
    """``shopify.yaml`` → ``shopify.test.yaml`` beside it."""
    p = FsPath(mapping_path)
    return p.with_name(p.name.removesuffix(".yaml") + ".test.yaml")


def to_jsonable(value: Any) -> Any:
    """Decimals, dates and ids as the strings test files write them; containers recursively."""
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    return value


def diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Human-readable differences, one per line, each naming the path."""
    here = path or "(record)"
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key in expected:
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{sub}: expected {expected[key]!r}, but it is absent")
            else:
                out.extend(diff(expected[key], actual[key], sub))
        for key in actual:
            if key not in expected:
                sub = f"{path}.{key}" if path else str(key)
                out.append(f"{sub}: not expected, got {actual[key]!r}")
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{here}: expected {len(expected)} items, got {len(actual)}: {actual!r}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(diff(e, a, f"{path}[{i}]"))
        return out
    if expected != actual or type(expected) is not type(actual):
        return [f"{here}: expected {expected!r}, got {actual!r}"]
    return []


@dataclass
class CaseResult:
    name: str
    entity: str
    direction: str
    line: int
    problems: list[str] = field(default_factory=list)
    errors: list[FieldError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class MappingTestResult:
    file: str
    mapping_file: str | None
    issues: list[LoadIssue] = field(default_factory=list)
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues and all(c.ok for c in self.cases)


def _run_case(mapping: CompiledMapping, case: CaseSpec, line: int) -> CaseResult:
    result = CaseResult(case.name, case.entity, case.direction, line)
    entity = mapping.entities[case.entity]
    out, errors = entity.map(case.input, case.direction)
    result.errors = errors
    expected_errors = case.expect_errors or []
    unmatched = list(errors)
    for exp in expected_errors:
        match = next(
            (
                e
                for e in unmatched
                if e.field == exp.field
                and (exp.transform is None or (e.transform or "").split("(")[0] == exp.transform)
                and (exp.message is None or exp.message in e.message)
            ),
            None,
        )
        if match is None:
            result.problems.append(
                f"expected an error on {exp.field}"
                + (f" from {exp.transform}" if exp.transform else "")
                + (f" containing {exp.message!r}" if exp.message else "")
                + ", none came"
            )
        else:
            unmatched.remove(match)
    result.problems.extend(f"unexpected error: {e}" for e in unmatched)
    if case.expect is not None:
        result.problems.extend(diff(to_jsonable(case.expect), to_jsonable(out)))
        if case.direction == "in" and not errors:
            result.problems.extend(
                f"mapped record is not valid canonical {case.entity}: {p}: {m}"
                for p, m in canonical.validation_problems(case.entity, out)
            )
    return result


def run_test_file(path: str | FsPath, mapping: CompiledMapping | None = None) -> MappingTestResult:
    """Run every case of a test file. Load problems (of either file) are issues, not exceptions."""
    p = FsPath(path)
    result = MappingTestResult(str(p), None)
    try:
        doc = load_yaml(p.read_text(encoding="utf-8"), str(p))
    except OSError as exc:
        result.issues.append(LoadIssue(str(p), 1, 1, f"cannot read file: {exc}"))
        return result
    except YamlSyntaxError as exc:
        result.issues.append(LoadIssue(str(p), exc.mark.line, exc.mark.column, str(exc)))
        return result
    issues = _Issues(doc)
    try:
        spec = MappingTestSpec.model_validate(doc.data)
    except ValidationError as exc:
        report_validation_error(exc, issues, root=MappingTestSpec)
        result.issues = issues.items
        return result
    mapping_path = p.parent / spec.mapping
    result.mapping_file = str(mapping_path)
    if mapping is None:
        mapping, load_issues = check_file(mapping_path)
        if mapping is None:
            result.issues = load_issues or [LoadIssue(str(p), 1, 1, f"cannot load {mapping_path}")]
            return result
    for i, case in enumerate(spec.cases):
        if case.entity not in mapping.entities:
            issues.add(("cases", i, "entity"), f"{mapping_path.name} maps no entity {case.entity!r}")
            continue
        line = doc.mark(("cases", i)).line
        result.cases.append(_run_case(mapping, case, line))
    result.issues = issues.items
    return result
