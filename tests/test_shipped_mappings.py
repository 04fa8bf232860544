"""The shipped mappings: they load, their test files pass, and every `both` field round-trips.

The round-trip property (hypothesis): for a valid native value v of a `both` field, written into a
realistic record from the mapping's own test file,
    c1 = in(record);  n2 = out(c1);  c2 = in(n2)
gives c2 == c1 for that field, and out(c2) == n2 — i.e. syncing a value out and reading it back
changes nothing, so a write can never come back as a fresh "change".
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mappings import canonical as canonical_paths
from mappings.compiler import CompiledEntity, CompiledField
from mappings.loader import load_mapping, shipped_mappings
from mappings.paths import MISSING, get_path, set_path
from mappings.spec import MappingTestSpec
from mappings.testfile import companion_test_file, run_test_file
from mappings.yamlsource import load_yaml
from tests.strategies import VALID_INPUTS, FakeResolver, pipeline_strategy

SHIPPED = shipped_mappings()
EXPECTED_SYSTEMS = {"salesforce", "shopify", "tryton", "inpost"}


def test_the_first_wave_is_shipped_with_test_files():
    systems = {load_mapping(p).system for p in SHIPPED}
    assert systems >= EXPECTED_SYSTEMS
    for path in SHIPPED:
        assert companion_test_file(path).exists(), f"{path.name} has no test file beside it"


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_test_file_passes(path: Path):
    result = run_test_file(companion_test_file(path))
    assert not result.issues, "\n".join(str(i) for i in result.issues)
    failures = [f"{c.name}:\n  " + "\n  ".join(c.problems) for c in result.cases if not c.ok]
    assert not failures, "\n".join(failures)
    entities = {c.entity for c in result.cases}
    assert entities == set(load_mapping(path).entities), "every entity needs at least one test case"
    assert any(c.errors for c in result.cases), "each test file shows at least one rejected record"


def _samples(path: Path) -> dict[str, dict[str, Any]]:
    """The first clean `in` case per entity: a realistic record to plant generated values into."""
    test_path = companion_test_file(path)
    spec = MappingTestSpec.model_validate(load_yaml(test_path.read_text(encoding="utf-8"), str(test_path)).data)
    out: dict[str, dict[str, Any]] = {}
    for case in spec.cases:
        if case.direction == "in" and not case.expect_errors and case.entity not in out:
            out[case.entity] = case.input
    return out


def _both_fields() -> list[tuple[str, CompiledEntity, CompiledField, dict[str, Any]]]:
    rows = []
    for path in SHIPPED:
        mapping = load_mapping(path)
        samples = _samples(path)
        for entity in mapping.entities.values():
            for f in entity.fields:
                if f.direction == "both":
                    rows.append((f"{mapping.system}.{entity.entity}.{f.canonical}", entity, f, samples[entity.entity]))
    return rows


BOTH = _both_fields()


def _by_type(entity: str, f: CompiledField) -> st.SearchStrategy[Any]:
    """Valid values for a field with no transform, from its canonical type."""
    assert f.canonical_path is not None
    leaf, problem = canonical_paths.resolve(entity, f.canonical_path)
    assert problem is None
    if leaf is bool:
        return st.booleans()
    if leaf is Decimal:
        return st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False, allow_infinity=False)
    if leaf is int:
        return st.integers(-(10**6), 10**6)
    text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=40)
    if getattr(leaf, "__origin__", None) is list:
        return st.lists(text, max_size=4)
    enum_values = getattr(leaf, "__members__", None)
    if enum_values:
        return st.sampled_from([m.value for m in enum_values.values()])
    return text


def _strategy(entity: CompiledEntity, f: CompiledField) -> st.SearchStrategy[Any]:
    if not f.in_steps:
        return _by_type(entity.entity, f)
    steps = [s.transform for s in f.in_steps if s.transform is not None]
    missing = [s.name for s in steps if s.name not in VALID_INPUTS]
    assert not missing, f"tests/strategies.py has no valid-input strategy for {missing}"
    return pipeline_strategy(steps)


@pytest.mark.parametrize(("entity", "field", "sample"), [r[1:] for r in BOTH], ids=[r[0] for r in BOTH])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_both_fields_round_trip(entity: CompiledEntity, field: CompiledField, sample: dict[str, Any], data):
    assert field.native_path is not None and field.canonical_path is not None
    value = data.draw(_strategy(entity, field), label=field.native or "value")
    record = copy.deepcopy(sample)
    set_path(record, field.native_path, value)

    resolver = FakeResolver()
    c1, errors = entity.map(record, "in", resolver)
    mine = [e for e in errors if e.field.split("[")[0] == (field.canonical or "").split("[")[0]]
    assert not mine, f"a valid input was rejected: {mine}"
    n2, errors = entity.map(c1, "out", resolver)
    assert not errors, errors
    c2, errors = entity.map(n2, "in", resolver)
    assert not [e for e in errors if e.field == field.canonical], errors
    v1 = get_path(c1, field.canonical_path)
    v2 = get_path(c2, field.canonical_path)
    assert v1 is not MISSING
    assert v2 == v1, f"in(out(in(x))) changed {field.canonical}: {v1!r} -> {v2!r}"
    n3, _ = entity.map(c2, "out", resolver)
    assert get_path(n3, field.native_path) == get_path(n2, field.native_path)
