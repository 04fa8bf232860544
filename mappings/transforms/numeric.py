"""Numbers and booleans: exact decimals for money and quantities, integers, yes/no flags."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from mappings.errors import TransformError
from mappings.registry import IDENTITY, Ex, ExP, Fails, transform
from mappings.transforms._util import plain, type_error

_ONE = Decimal(1)
_QUANTA = [Decimal(1).scaleb(-p) for p in range(19)]

Places = Annotated[int, Field(ge=0, le=18)]


def to_decimal(value: Any) -> Decimal:
    """Read a number exactly: text as written, floats through their shortest repr (``0.1`` stays
    ``0.1``, not ``0.1000000000000000055511151231257827``). Booleans are not numbers."""
    t = type(value)
    if t is str:
        text = value.strip()
        if "_" in text:
            raise TransformError("not a number (no digit separators, please)")
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise TransformError("not a number") from None
        if not number.is_finite():
            raise TransformError("not a finite number")
        if "e" in text or "E" in text:
            return _no_exponent(number)
        return number
    if t is int:
        return Decimal(value)
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            raise TransformError("not a finite number")
        text = repr(value)
        return _no_exponent(Decimal(text)) if "e" in text else Decimal(text)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TransformError("not a finite number")
        return _no_exponent(value)
    raise type_error(value, "a number or numeric text")


def _no_exponent(number: Decimal) -> Decimal:
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent > 0:
        return number.quantize(_ONE)
    return number


def _round(number: Decimal, places: int) -> Decimal:
    try:
        rounded = number.quantize(_QUANTA[places], rounding=ROUND_HALF_UP)
    except InvalidOperation:
        raise TransformError(f"number too large to keep {places} decimal places") from None
    return rounded if rounded else rounded.copy_abs()  # no "-0.00"


def decimal_out(value: Any, places: Places | None = None) -> str:
    """Decimal → plain text (``Decimal("1.5E+3")`` → ``"1500"``), rounded to ``places`` if given."""
    number = to_decimal(value)
    return plain(number if places is None else _round(number, places))


@transform(
    examples=[
        Ex("19.90", Decimal("19.90")),
        Ex(" -3.5 ", Decimal("-3.5")),
        Ex(2, Decimal("2")),
        Ex(0.1, Decimal("0.1"), note="floats are read through their shortest form, without binary noise"),
        Ex("1.5e3", Decimal("1500")),
        ExP("2.345", Decimal("2.35"), places=2, note="rounded half up"),
        ExP(7, Decimal("7.000"), places=3),
        Fails("19,90", note="decimal comma: put regex_replace(',', '.') before"),
        Fails("NaN"),
        Fails("1_000"),
        Fails(""),
        Fails(True),
    ],
    inverse=decimal_out,
)
def decimal_(value: Any, places: Places | None = None) -> Decimal:
    """Read an exact decimal number (``Decimal``) from text, an integer or a float.

    Canonical quantities, prices and rates are decimals, never floats. Text must use a dot as
    the decimal separator, with no thousands separators; NaN and infinity are rejected, and an
    empty string is an error (put ``empty_to_none`` first if the system sends ``""``).
    With ``places`` the number is rounded half-up to that many decimal places; without, it
    keeps the digits it came with (``"19.90"`` stays ``19.90``). Exponents are expanded.
    The way out writes the number as plain text (``"1500"``, never ``"1.5E+3"``).
    """
    number = to_decimal(value)
    return number if places is None else _round(number, places)


def money_out(value: Any, places: Places = 2) -> str:
    """Amount → text with exactly ``places`` decimals (``Decimal("5")`` → ``"5.00"``)."""
    return plain(_round(to_decimal(value), places))


@transform(
    examples=[
        Ex("119.9", Decimal("119.90")),
        Ex(5, Decimal("5.00")),
        Ex("0.125", Decimal("0.13"), note="rounded half up"),
        ExP("1999", Decimal("1999"), places=0, note="currencies without minor units (HUF)"),
        Fails("12 zł"),
        Fails(float("inf")),
    ],
    inverse=money_out,
)
def money(value: Any, places: Places = 2) -> Decimal:
    """Read an amount of money: a decimal rounded half-up to ``places`` (default 2) decimals.

    Like ``decimal(places=2)``, spelt for what it is; the currency is a separate field. Amounts
    always carry their places (``5`` → ``5.00``), so equal amounts compare and print equal,
    and the way out writes them with the places too (``"5.00"``).
    """
    return _round(to_decimal(value), places)


Rate = Annotated[Decimal, Field(ge=0, le=1)]


def add_tax_out(value: Any, rate: Rate) -> str:
    """Gross → net: divided by ``1 + rate``, kept to 4 decimals (what an ERP stores as a net unit price)."""
    return plain(_round(to_decimal(value) / (_ONE + Decimal(rate)), 4))


@transform(
    examples=[
        ExP("162.6016", Decimal("200.00"), rate=Decimal("0.23")),
        ExP("24.39", Decimal("30.00"), rate=Decimal("0.23"), note="rounded half up to cents"),
        ExP("100", Decimal("108.00"), rate=Decimal("0.08")),
        Fails("12 zł", rate=Decimal("0.23")),
    ],
    inverse=add_tax_out,
)
def add_tax(value: Any, rate: Rate) -> Decimal:
    """A net amount (an ERP's unit price before VAT) → the gross amount a shop shows: times ``1 +
    rate``, rounded half up to cents. The way out divides (gross → net, 4 decimals), so a shop's
    tax-inclusive price goes to the ERP net and the ERP adds the same VAT back: 200.00 → 162.6016 →
    200.00. One rate per field: products taxed at another rate need their own mapping."""
    return _round(to_decimal(value) * (_ONE + Decimal(rate)), 2)


@transform(
    examples=[
        Ex("3", 3),
        Ex(" -12 ", -12),
        Ex(7, 7),
        Ex("3.0", 3, note="a whole number written with decimals is fine"),
        Ex(4.0, 4),
        Fails("3.5"),
        Fails("three"),
        Fails(False, note="a boolean is not a number"),
    ],
    inverse=IDENTITY,
)
def int_(value: Any) -> int:
    """Read a whole number from an integer, numeric text or a whole float/decimal; reject fractions.

    ``"3.0"`` becomes 3 but ``"3.5"`` fails rather than being rounded silently. Booleans fail
    too (``true`` is not 1 in any system we meet).
    """
    t = type(value)
    if t is int:
        return value  # type: ignore[no-any-return]
    if t is str:
        text = value.strip()
        if "_" not in text:
            try:
                return int(text)
            except ValueError:
                pass
    number = to_decimal(value)
    if number != number.to_integral_value():
        raise TransformError(f"{number} is not a whole number")
    return int(number)


def _lowered(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(v.strip().lower() for v in values)


Words = Annotated[tuple[str, ...], AfterValidator(_lowered)]

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "on", "tak", "prawda"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "off", "nie", "fałsz"})


@transform(
    examples=[
        Ex(True, True),
        Ex("yes", True),
        Ex(" TAK ", True),
        Ex("0", False),
        Ex(1, True),
        Ex("Nie", False),
        ExP("Y", True, true_values=["Y", "J"], false_values=["N"]),
        ExP("J", True, true_values=["Y", "J"], false_values=["N"]),
        Fails("maybe"),
        Fails(2),
        Fails(""),
    ],
    inverse=IDENTITY,
)
def bool_(value: Any, true_values: Words | None = None, false_values: Words | None = None) -> bool:
    """Read a yes/no flag from a boolean, 0/1, or a word, case-insensitively.

    Default words — true: ``true t yes y 1 on tak prawda``; false: ``false f no n 0 off nie
    fałsz``. ``true_values`` / ``false_values`` replace the defaults for their side (e.g.
    ``bool(true_values=["J"], false_values=["N"])`` for a German ERP). Anything else — including
    an empty string — fails rather than guessing. The way out writes a real boolean; for a system
    that wants words, use ``out_transform: map: {true: "Y", false: "N"}``.
    """
    if value is True or value is False:
        return value
    t = type(value)
    if t is str:
        word = value.strip().lower()
        if word in (TRUE_WORDS if true_values is None else true_values):
            return True
        if word in (FALSE_WORDS if false_values is None else false_values):
            return False
        raise TransformError("not a yes/no value")
    if t is int and (value == 0 or value == 1):
        return value == 1  # type: ignore[no-any-return]
    raise TransformError("not a yes/no value")
