"""The store's UTC timestamp type on SQLite writes exactly the text SQLAlchemy's DATETIME writes.

Rows written before and after the fast bind processor are compared and ordered as text
(``next_attempt_at <= now``): one character of difference would reorder the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite

from core.store.schema import Ts

_DIALECT = sqlite.dialect()
_FAST = Ts.bind_processor(_DIALECT)
_SQLALCHEMY = DateTime().dialect_impl(_DIALECT).bind_processor(_DIALECT)
_ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=_ZONES))
def test_the_text_is_sqlalchemys_for_the_same_instant_in_utc(value: datetime) -> None:
    assert _FAST(value) == _SQLALCHEMY(value.astimezone(UTC).replace(tzinfo=None))


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        _FAST(datetime(2026, 12, 3, 8, 0))


def test_null_stays_null() -> None:
    assert _FAST(None) is None
