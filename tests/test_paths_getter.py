"""mappings.paths.getter reads what get_path reads, and setter writes what set_path writes, errors
included (the sync core relies on both)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mappings.paths import MISSING, get_path, getter, parse_path, set_path, setter, unit_access

RECORDS: list[Any] = [
    {"a": {"b": 1}},
    {"a": {"b": None}},
    {"a": None},
    {"a": {}},
    {},
    {"a": {"b": {"c": [1, 2]}}},
    {"a": [{"b": 1}, {"b": 2}]},
    {"a": "text"},
    {"a": {"b": "text"}},
    {"a": {"b": {"c": None}}},
    None,
    MISSING,
]
WRITABLE: list[Any] = [r for r in RECORDS if isinstance(r, dict)]


def _outcome(fn: Any, record: Any) -> Any:
    try:
        return ("value", fn(record))
    except TypeError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("text", ["a", "a.b", "a.b.c", "a[]", "a[0]", "a[1]", "a[0].b", "a.b.c[1]", "a[b=2].b"])
@pytest.mark.parametrize("record", RECORDS, ids=[repr(r) for r in RECORDS])
def test_getter_agrees_with_get_path(text: str, record: Any) -> None:
    path = parse_path(text)
    assert _outcome(getter(path), record) == _outcome(lambda r: get_path(r, path), record)


def test_an_absent_key_is_missing_and_a_null_step_is_null() -> None:
    read = getter(parse_path("address.city"))
    assert read({"address": {"city": "Kraków"}}) == "Kraków"
    assert read({}) is MISSING
    assert read({"address": None}) is None
    with pytest.raises(TypeError, match="expected an object before 'city'"):
        read({"address": "Kraków"})


def _write_outcome(fn: Any, record: Any) -> Any:
    try:
        fn(record)
        return ("value", record)
    except Exception as exc:  # whatever set_path raises, the setter must raise too
        return ("error", type(exc).__name__, record)


@pytest.mark.parametrize("text", ["a", "a.b", "a.b.c", "a[]", "a[0]", "a[0].b", "a.b.c[1]", "a[b=2].b"])
@pytest.mark.parametrize("record", WRITABLE, ids=[repr(r) for r in WRITABLE])
def test_setter_agrees_with_set_path(text: str, record: Any) -> None:
    path = parse_path(text)
    fast, slow = copy.deepcopy(record), copy.deepcopy(record)
    assert _write_outcome(lambda r: setter(path)(r, "new"), fast) == _write_outcome(
        lambda r: set_path(r, path, "new"), slow
    )


def test_unit_access_reads_and_writes_one_unit_and_is_made_once() -> None:
    read, write = unit_access("address.city")
    record: dict[str, Any] = {}
    assert read(record) is MISSING
    write(record, "Kraków")  # the container is made on the way, as set_path does
    assert record == {"address": {"city": "Kraków"}} and read(record) == "Kraków"
    assert unit_access("address.city") == (read, write)
