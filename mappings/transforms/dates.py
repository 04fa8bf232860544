"""Dates and timestamps. Canonical dates are ``datetime.date``; timestamps are aware, in UTC."""

from __future__ import annotations

import functools
from datetime import UTC, date, time, timedelta, tzinfo
from datetime import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator

from mappings.errors import TransformError
from mappings.registry import Ex, ExP, Fails, transform
from mappings.transforms._util import type_error

_ZERO = timedelta(0)
_PROBE = dt(2001, 2, 3, 4, 5, 6, 7000)


def _valid_format(fmt: str) -> str:
    """A strftime/strptime format must survive a round trip of a sample value."""
    if "%" not in fmt:
        raise ValueError(f"format {fmt!r} has no %-directives (e.g. '%d.%m.%Y')")
    try:
        dt.strptime(_PROBE.strftime(fmt), fmt)
    except ValueError as exc:
        raise ValueError(f"bad date format {fmt!r}: {exc}") from None
    return fmt


@functools.lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The time zone called ``name`` (IANA, e.g. ``Europe/Warsaw``); ``UTC`` is the fixed zone."""
    if name in ("UTC", "Z", "Etc/UTC"):
        return UTC
    return ZoneInfo(name)


def _valid_zone(name: str) -> str:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'Europe/Warsaw'; "
            "if the name is right, this machine lacks time zone data: install tzdata)"
        ) from None
    return name


DateFormat = Annotated[str, AfterValidator(_valid_format)]
TimeZone = Annotated[str, AfterValidator(_valid_zone)]


# --- date ---------------------------------------------------------------------------------------


def _parse_date(value: Any, fmt: str | None) -> date:
    if isinstance(value, str):
        text = value.strip()
        try:
            if fmt is not None:
                return dt.strptime(text, fmt).date()
            if len(text) > 10 and text[10] in "T ":
                return date.fromisoformat(text[:10])
            return date.fromisoformat(text)
        except ValueError:
            expected = f"the format {fmt!r}" if fmt else "an ISO 8601 date (YYYY-MM-DD)"
            raise TransformError(f"not a date in {expected}") from None
    if isinstance(value, dt):
        return value.date()
    if isinstance(value, date):
        return value
    raise type_error(value, "a date as text")


def date_out(value: Any, format: DateFormat | None = None) -> str:
    """Date → text: ISO 8601 (``2026-11-20``), or ``format`` when given."""
    day = _parse_date(value, None)
    return day.isoformat() if format is None else day.strftime(format)


@transform(
    examples=[
        Ex("1990-05-17", date(1990, 5, 17)),
        Ex("1990-05-17T00:00:00Z", date(1990, 5, 17), note="a time part is ignored, no zone shift"),
        ExP("17.05.1990", date(1990, 5, 17), format="%d.%m.%Y"),
        ExP("05/17/1990", date(1990, 5, 17), "%m/%d/%Y"),
        Ex(date(1990, 5, 17), date(1990, 5, 17), note="YAML dates pass through"),
        Fails("17.05.1990", note="not ISO, and no format given"),
        Fails("1990-02-30"),
        Fails("1990-05-17", "%d.%m.%Y"),
    ],
    inverse=date_out,
)
def date_(value: Any, format: DateFormat | None = None) -> date:
    """Read a calendar date (birth date, delivery day) — a ``datetime.date``, no time, no zone.

    Without ``format``: ISO 8601 ``YYYY-MM-DD``; if a time follows (``1990-05-17T00:00:00Z``)
    it is ignored and the date is taken as written, not shifted between zones. With ``format``:
    a ``strptime`` format such as ``%d.%m.%Y``, checked when the mapping loads. Date objects
    (YAML writes unquoted dates as such) pass through. The way out writes the date in the
    same format (ISO without one).
    """
    return _parse_date(value, format)


# --- datetime -----------------------------------------------------------------------------------


def _parse_datetime(value: Any, fmt: str | None, local: tzinfo) -> dt:
    t = type(value)
    if t is str:
        text = value.strip()
        try:
            stamp = dt.fromisoformat(text) if fmt is None else dt.strptime(text, fmt)
        except ValueError:
            expected = f"the format {fmt!r}" if fmt else "ISO 8601 (2026-11-20T09:15:00Z)"
            raise TransformError(f"not a timestamp in {expected}") from None
    elif t is int or t is float:
        seconds = value / 1000 if abs(value) >= 100_000_000_000 else value
        try:
            return dt.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise TransformError("epoch time out of range") from None
    elif isinstance(value, dt):
        stamp = value
    elif isinstance(value, date):
        stamp = dt.combine(value, time())
    else:
        raise type_error(value, "a timestamp as text or epoch seconds")
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=local)
    return stamp.astimezone(UTC)


def datetime_out(value: Any, format: DateFormat | None = None, tz: TimeZone = "UTC") -> str:
    """UTC timestamp → text in ``tz``: ``format`` if given, else ISO 8601 (``Z`` for UTC)."""
    if isinstance(value, str):
        value = _parse_datetime(value, None, UTC)
    elif not isinstance(value, dt):
        raise type_error(value, "a timestamp")
    elif value.tzinfo is None or value.utcoffset() is None:
        raise TransformError("timestamp has no time zone (canonical timestamps are UTC)")
    stamp: dt = value.astimezone(zone(tz))
    if format is not None:
        return stamp.strftime(format)
    if stamp.utcoffset() == _ZERO:
        return stamp.replace(tzinfo=None).isoformat() + "Z"
    return stamp.isoformat()


@transform(
    examples=[
        Ex("2026-11-20T09:15:00Z", dt(2026, 11, 20, 9, 15, tzinfo=UTC)),
        Ex("2026-11-20T10:15:00+01:00", dt(2026, 11, 20, 9, 15, tzinfo=UTC)),
        Ex("2026-11-20 09:15", dt(2026, 11, 20, 9, 15, tzinfo=UTC), note="no zone: read in tz (UTC)"),
        ExP("2026-07-01T12:00:00", dt(2026, 7, 1, 10, 0, tzinfo=UTC), tz="Europe/Warsaw", note="summer time"),
        ExP("2026-12-01T12:00:00", dt(2026, 12, 1, 11, 0, tzinfo=UTC), tz="Europe/Warsaw"),
        ExP("20.11.2026 10:15", dt(2026, 11, 20, 9, 15, tzinfo=UTC), "%d.%m.%Y %H:%M", "Europe/Warsaw"),
        Ex(1795166100, dt(2026, 11, 20, 9, 15, tzinfo=UTC), note="epoch seconds"),
        Ex(1795166100000, dt(2026, 11, 20, 9, 15, tzinfo=UTC), note="epoch milliseconds"),
        Ex("2026-11-20T09:15:00.250Z", dt(2026, 11, 20, 9, 15, 0, 250000, tzinfo=UTC)),
        Fails("20.11.2026"),
        Fails("2026-11-31T10:00:00Z"),
        Fails("2026-11-20", "%d.%m.%Y %H:%M"),
        Fails(True),
    ],
    inverse=datetime_out,
)
def datetime_(value: Any, format: DateFormat | None = None, tz: TimeZone = "UTC") -> dt:
    """Read a point in time as an aware ``datetime`` in UTC (the canonical form of timestamps).

    Accepts ISO 8601 text (``2026-11-20T09:15:00Z``, ``…+01:00``, ``2026-11-20 09:15``, a bare
    date meaning midnight), text in a ``strptime`` ``format`` (checked at load), epoch numbers
    (seconds; values of 10¹¹ and more are taken as milliseconds, as JavaScript systems send
    them) and datetime objects. A time without a zone is read in ``tz`` (an IANA zone, default
    ``UTC``); with ``Europe/Warsaw`` daylight saving is applied per date. In the hour repeated
    when clocks go back, a zoneless time is taken as the first (summer) occurrence.

    The way out converts to ``tz`` and writes ``format`` if given, else ISO 8601 with the zone's
    offset — ``2026-11-20T09:15:00Z`` for UTC, ``2026-11-20T10:15:00+01:00`` for Warsaw;
    fractions of a second are written only when present. So reading back what was written gives
    the same instant (a ``format`` without seconds or ``%f`` drops them, by design).
    """
    return _parse_datetime(value, format, zone(tz))
