"""The store's JSON codec: orjson on the hot path must write what the standard library wrote.

Stored fingerprints are digests of this text: a codec that spelled a value differently would make
every stored record look changed after an upgrade, and resend it.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core import jsoncodec

_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=12)
_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    _text,
    st.decimals(allow_nan=False, allow_infinity=False, places=4),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
)
_value = st.recursive(
    _leaf, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4), max_leaves=20
)


def _stdlib(value: object) -> str:
    return json.dumps(value, default=jsoncodec._default, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


@given(_value)
def test_the_text_is_the_standard_librarys_and_it_round_trips(value: object) -> None:
    text = jsoncodec.dumps(value)
    assert text == _stdlib(value)
    assert jsoncodec.loads(text) == value
    assert jsoncodec.loads(text.encode()) == value
    assert jsoncodec.loads(text) == json.loads(text, object_hook=jsoncodec._hook)


def test_tags_come_back_as_their_types_at_any_depth() -> None:
    value = {
        "total": Decimal("19.90"),
        "lines": [{"price": Decimal("0.10"), "at": datetime(2026, 12, 3, 8, 0, tzinfo=UTC)}],
        "born": date(1990, 5, 17),
        "note": 'costs "$5"',
        "shifted": datetime(2026, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
    }
    back = jsoncodec.loads(jsoncodec.dumps(value))
    assert back == value
    assert isinstance(back["lines"][0]["price"], Decimal)
    assert back["shifted"].utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "value",
    [{"n": 2**70}, {2: "b", 1: "a"}, {"s": "lone \ud800 surrogate"}],
    ids=["integer beyond 64 bits", "non-string key", "lone surrogate"],
)
def test_what_orjson_refuses_is_written_by_the_standard_library(value: object) -> None:
    assert jsoncodec.dumps(value) == _stdlib(value)


@pytest.mark.parametrize(
    "value",
    [{"n": 2**70, "at": datetime(2026, 12, 3, tzinfo=UTC)}, {"s": "lone \ud800 surrogate", "p": Decimal("1.5")}],
    ids=["integer beyond 64 bits", "lone surrogate"],
)
def test_what_orjson_cannot_read_reads_back_tags_and_all(value: object) -> None:
    assert jsoncodec.loads(jsoncodec.dumps(value)) == value


def test_a_value_nothing_can_store_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="cannot store a object as JSON"):
        jsoncodec.dumps({"x": object()})


def test_nan_written_by_the_standard_library_still_reads() -> None:
    assert jsoncodec.loads('{"x":NaN}')["x"] != jsoncodec.loads('{"x":NaN}')["x"]  # NaN, not an error
