"""Value tables and defaults: ``map`` (code translation), ``country_iso2``, ``default``."""

from __future__ import annotations

import functools
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from mappings.errors import TransformArgError, TransformError
from mappings.registry import IDENTITY, Ex, ExP, Fails, transform
from mappings.transforms._countries import ALPHA2, ALPHA3, NAMES
from mappings.transforms._util import country_key, shorten, type_error

# --- map ----------------------------------------------------------------------------------------


class _NoDefault:
    def __repr__(self) -> str:
        return "<reject>"


NO_DEFAULT = _NoDefault()
"""``map``'s default when none is given: a value missing from the table is an error."""


class ValueTable(dict[Any, Any]):
    """A ``map`` table as bound at load time; it remembers its reverse once computed."""

    __slots__ = ("reverse",)

    def __init__(self, items: dict[Any, Any] | None = None) -> None:
        super().__init__(items or {})
        self.reverse: dict[Any, Any] | None = None


def _as_table(items: dict[Any, Any]) -> ValueTable:
    return ValueTable(items)


Table = Annotated[dict[Any, Any], Field(min_length=1), AfterValidator(_as_table)]


def reverse_table(table: dict[Any, Any]) -> dict[Any, Any]:
    """``{native: canonical}`` → ``{canonical: native}``; TransformArgError if values repeat."""
    reverse = getattr(table, "reverse", None)
    if reverse is not None:
        return reverse  # type: ignore[no-any-return]
    reverse = {}
    for key, value in table.items():
        try:
            other = reverse.get(value, NO_DEFAULT)
        except TypeError:
            raise TransformArgError(
                f"map is not reversible: value {value!r} cannot be looked up; give the field an out_transform"
            ) from None
        if other is not NO_DEFAULT:
            raise TransformArgError(
                f"map is not reversible: value {value!r} comes from both {other!r} and {key!r}; "
                "give the field an out_transform"
            )
        reverse[value] = key
    if isinstance(table, ValueTable):
        table.reverse = reverse
    return reverse


def _unknown(value: Any, known: dict[Any, Any]) -> TransformError:
    return TransformError(f"{value!r} is not in the table (known: {shorten(list(known))})")


def check_map_invertible(table: dict[Any, Any], default: Any = NO_DEFAULT) -> None:
    """Refuse, at load time, to derive the way out of a table whose values repeat."""
    reverse_table(table)


def map_out(value: Any, table: dict[Any, Any], default: Any = NO_DEFAULT) -> Any:
    """The reversed table: canonical value → native value. Strict: an unknown value is an error
    (``default`` is for the way in only)."""
    reverse = reverse_table(table)
    try:
        return reverse[value]
    except KeyError:
        raise _unknown(value, reverse) from None
    except TypeError:
        raise type_error(value, "a single value") from None


map_out.__dict__["check_invertible"] = check_map_invertible

_STATUS = {"PAID": "paid", "PENDING": "pending", "REFUNDED": "refunded"}


@transform(
    examples=[
        ExP("PAID", "paid", _STATUS),
        ExP("REFUNDED", "refunded", _STATUS),
        ExP("VOIDED", "pending", _STATUS, default="pending", note="unknown → default"),
        ExP("NOT_SUBSCRIBED", None, {"SUBSCRIBED": True}, default=None),
        ExP(1, "active", {1: "active", 0: "archived"}, note='keys match exactly: 1 is not "1"'),
        Fails("VOIDED", _STATUS, note="unknown and no default"),
        Fails("1", {1: "active", 0: "archived"}),
    ],
    inverse=map_out,
)
def map_(value: Any, table: Table, default: Any = NO_DEFAULT) -> Any:
    """Translate a value through a table — status codes, enum spellings, flags.

    Keys match exactly as the record has them: text ``"1"`` does not match the number ``1``
    (quote YAML keys to match text). One quirk comes from Python: ``true``/``1`` and
    ``false``/``0`` are the same key. A value not in the table fails, naming the known keys —
    unless ``default`` is given (``default: null`` maps unknown values to null).

    Reversible when the table is one-to-one: the way out looks the canonical value up in the
    reversed table, strictly (``default`` does not apply). A table whose values repeat
    (``{SUBSCRIBED: true, UNSUBSCRIBED: false, NOT_SUBSCRIBED: false}``) cannot be reversed;
    the loader then asks the ``both`` field for an ``out_transform``.
    """
    try:
        return table[value]
    except KeyError:
        if default is not NO_DEFAULT:
            return default
        raise _unknown(value, table) from None
    except TypeError:
        if default is not NO_DEFAULT:
            return default
        raise type_error(value, "a single value") from None


# --- default ------------------------------------------------------------------------------------


@transform(
    examples=[
        ExP(None, "PL", "PL"),
        ExP("DE", "DE", "PL"),
        ExP("", "", "PL", note="only null is replaced; add empty_to_none before for empty text"),
        ExP(None, False, False),
    ],
    inverse=IDENTITY,
    accepts_none=True,
)
def default(current: Any, value: Any) -> Any:
    """Use ``value`` when the field is null or missing; anything else passes unchanged.

    Typical for values a system leaves out but the canonical record should always have
    (a country for a single-country shop, a currency). On the way out the canonical value is
    written as it is.
    """
    return value if current is None else current


# --- countries ----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=2048)
def _country(text: str) -> str | None:
    text = text.strip()
    upper = text.upper()
    if len(text) == 2 and upper in ALPHA2:
        return upper
    if len(text) == 3 and upper in ALPHA3:
        return ALPHA3[upper]
    return NAMES.get(country_key(text))


@transform(
    examples=[
        Ex("PL", "PL"),
        Ex("pl ", "PL"),
        Ex("POL", "PL"),
        Ex("Poland", "PL"),
        Ex("Polska", "PL"),
        Ex("Niemcy", "DE"),
        Ex("Deutschland", "DE"),
        Ex("united kingdom", "GB"),
        Ex("UK", "GB"),
        Ex("Wegry", "HU", note="accents optional (Węgry)"),
        Ex("Czech Republic", "CZ"),
        Ex("Korea, Republic of", "KR"),
        Fails("Narnia"),
        Fails("XX"),
        Fails("Korea", note="ambiguous"),
        Fails(616),
    ],
    inverse=IDENTITY,
)
def country_iso2(value: Any) -> str:
    """Normalise a country to its ISO 3166-1 alpha-2 code (``PL``), the canonical form.

    Accepts alpha-2 and alpha-3 codes in any case (``pl``, ``POL``) and names — English short,
    official and common names from ISO 3166 (``Poland``, ``Republic of Poland``,
    ``Korea, Republic of``), their Polish and German translations (``Polska``, ``Niemcy``,
    ``Deutschland``) and everyday aliases (``UK``, ``Holland``, ``Czech Republic``, native
    names of European countries). Case, accents and punctuation are ignored. Kosovo is ``XK``.
    A name that fits two countries (``Korea``) or none fails, so a typo cannot ship a parcel
    to the wrong country.
    """
    if isinstance(value, str):
        if value in ALPHA2:
            return value
        code = _country(value)
        if code is not None:
            return code
        raise TransformError("not a known country name or ISO 3166 code")
    raise type_error(value, "a country name or code as text")
