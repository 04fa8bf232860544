"""mappings.paths.getter reads what get_path reads, errors included (the sync core relies on both)."""

from __future__ import annotations

from typing import Any

import pytest

from mappings.paths import MISSING, get_path, getter, parse_path

RECORDS: list[Any] = [
    {"a": {"b": 1}},
    {"a": {"b": None}},
    {"a": None},
    {"a": {}},
    {},
    {"a": {"b": {"c": [1, 2]}}},
    {"a": [{"b": 1}, {"b": 2}]},
    {"a": "text"},
    None,
    MISSING,
]


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
