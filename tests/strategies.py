"""Hypothesis strategies of *valid native inputs* for each built-in transform, given its params.

``VALID_INPUTS[name](bound)`` is a strategy of values that ``bound.step`` accepts — realistic
native values, in the messy variety systems send (padded, mixed case, other spellings), not
only canonical ones. Use :func:`pipeline_strategy` for a whole pipeline: it skips leading
clean-up steps (``strip | email`` draws e-mail addresses, not arbitrary text).

``FakeResolver`` is a cross-reference for ``lookup``: it knows every native id made of digits
without a leading zero (up to 12 digits) and maps it to a fixed UUID, both ways.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import phonenumbers
from hypothesis import strategies as st

from mappings.registry import BoundTransform
from mappings.transforms._countries import ALPHA2, ALPHA3, NAMES
from mappings.transforms.numeric import FALSE_WORDS, TRUE_WORDS

Strategy = Callable[[BoundTransform], st.SearchStrategy[Any]]


class FakeResolver:
    """A cross-reference that knows native ids ``[1-9][0-9]{0,11}`` ↔ ``00000000-0000-4000-8000-<12 digits>``."""

    PREFIX = "00000000-0000-4000-8000-"

    def canonical_id(self, entity: str, system: str, native_id: str) -> str | None:
        if native_id.isascii() and native_id.isdigit() and native_id[0] != "0" and len(native_id) <= 12:
            return f"{self.PREFIX}{int(native_id):012d}"
        return None

    def native_id(self, entity: str, system: str, canonical_id: str) -> str | None:
        if canonical_id.startswith(self.PREFIX) and canonical_id[len(self.PREFIX) :].isdigit():
            return str(int(canonical_id[len(self.PREFIX) :]))
        return None


def param(bound: BoundTransform, name: str) -> Any:
    """The value of one of ``bound``'s params, whether given by position, by name or defaulted."""
    for p, value in zip(bound.definition.params, bound.args, strict=False):
        if p.name == name:
            return value
    if name in bound.kwargs:
        return bound.kwargs[name]
    for p in bound.definition.params:
        if p.name == name:
            return p.default
    raise KeyError(name)


# --- building blocks ----------------------------------------------------------------------------

LETTERS = (
    string.ascii_letters
    + "ąćęłńóśźżĄĆĘŁŃÓŚŹŻäöüßÄÖÜéèêàçñÉšžčřěůýáíŠŽČŘ"
    + "абвгдежзийклмнопрстуфхцчшщьэюяіїєАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЬЭЮЯІЇЄ"
    + "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΕΖΗΘΙΚΛΜΝΞΟΠΡΣΤΥΦΧΨΩ"
)
TEXT_ALPHABET = LETTERS + string.digits + " -'.,/&()\t"
TEXT = st.text(TEXT_ALPHABET, max_size=30)
"""Realistic free text: names, streets, notes (Latin with Polish/German/Czech letters, Cyrillic, Greek)."""


def _padded(s: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    pad = st.sampled_from(["", "", " ", "  ", "\t", "\u00a0"])
    return st.tuples(pad, s, pad).map("".join)


def _cased(s: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.tuples(s, st.sampled_from(["keep", "upper", "lower", "title"])).map(
        lambda t: t[0] if t[1] == "keep" else getattr(t[0], t[1])()
    )


def _item(sep: str, *, stripped: bool) -> st.SearchStrategy[str]:
    alphabet = "".join(c for c in TEXT_ALPHABET if c not in sep and c != "\t")
    items = st.text(alphabet, min_size=1, max_size=12)
    return items.map(str.strip).filter(bool) if stripped else items


# --- one strategy per transform ------------------------------------------------------------------


def _text(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return _padded(TEXT)


_LOCAL_CHARS = string.ascii_letters + string.digits + "_%+-"
_LABEL = st.one_of(
    st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True),
    st.sampled_from(["żółw", "müller", "sklep-24", "poczta"]),
)
_TLD = st.sampled_from(["pl", "com", "de", "eu", "com.pl", "co.uk", "info", "xn--p1ai"])


def _email(bound: BoundTransform) -> st.SearchStrategy[Any]:
    local = st.lists(st.text(_LOCAL_CHARS, min_size=1, max_size=10), min_size=1, max_size=3).map(".".join)
    domain = st.builds(lambda labels, tld: ".".join([*labels, tld]), st.lists(_LABEL, min_size=1, max_size=2), _TLD)
    address = st.builds(lambda lo, do: f"{lo}@{do}", local, domain)
    return _padded(_cased(address))


def _phone(bound: BoundTransform) -> st.SearchStrategy[Any]:
    region = param(bound, "region")
    seeds = []
    for kind in (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE):
        example = phonenumbers.example_number_for_type(region, kind)
        if example is not None:
            seeds.append((example.country_code, phonenumbers.national_significant_number(example)))
    assert seeds, f"no example numbers for {region}"

    def build(seed: tuple[int, str], tail: str) -> phonenumbers.PhoneNumber | None:
        cc, nsn = seed
        number = phonenumbers.parse(f"+{cc}{nsn[: -len(tail)]}{tail}")
        return number if phonenumbers.is_valid_number(number) else None

    numbers = st.builds(build, st.sampled_from(seeds), st.text(string.digits, min_size=3, max_size=3)).filter(
        lambda n: n is not None
    )
    fmt = phonenumbers.PhoneNumberFormat

    def render(number: phonenumbers.PhoneNumber, style: str) -> str:
        if style == "e164":
            return str(phonenumbers.format_number(number, fmt.E164))
        if style == "international":
            return str(phonenumbers.format_number(number, fmt.INTERNATIONAL))
        if style == "national":
            return str(phonenumbers.format_number(number, fmt.NATIONAL))
        if style == "00":
            return "00" + str(phonenumbers.format_number(number, fmt.E164))[1:]
        if style == "dashes":
            return str(phonenumbers.format_number(number, fmt.INTERNATIONAL)).replace(" ", "-")
        return " ".join(str(phonenumbers.format_number(number, fmt.E164)))  # "+ 4 8 6 0 0 ..."

    styles = st.sampled_from(["e164", "international", "national", "00", "dashes", "spaced"])
    return _padded(st.builds(render, numbers, styles))


_DATES = st.dates(date(1900, 1, 1), date(2099, 12, 31))


def _date(bound: BoundTransform) -> st.SearchStrategy[Any]:
    fmt = param(bound, "format")
    if fmt is not None:
        return _DATES.map(lambda d: d.strftime(fmt))
    return st.one_of(
        _DATES.map(date.isoformat),
        _DATES.map(lambda d: f"{d.isoformat()}T00:00:00Z"),
        _DATES,
    )


_DATETIMES = st.datetimes(datetime(1971, 1, 1), datetime(2099, 12, 31))
_OFFSETS = st.integers(-14 * 4, 14 * 4).map(lambda q: timezone(timedelta(minutes=15 * q)))


def _datetime(bound: BoundTransform) -> st.SearchStrategy[Any]:
    fmt = param(bound, "format")
    if fmt is not None:
        if "%z" in fmt:
            return st.builds(lambda d, tz: d.replace(tzinfo=tz).strftime(fmt), _DATETIMES, _OFFSETS)
        return _DATETIMES.map(lambda d: d.strftime(fmt))
    aware = st.builds(lambda d, tz: d.replace(tzinfo=tz), _DATETIMES, _OFFSETS)
    return st.one_of(
        _DATETIMES.map(lambda d: d.isoformat()),
        _DATETIMES.map(lambda d: d.isoformat(sep=" ", timespec="minutes")),
        _DATETIMES.map(lambda d: d.isoformat() + "Z"),
        aware.map(lambda d: d.isoformat()),
        aware.map(lambda d: int(d.timestamp())),
        aware.map(lambda d: int(d.timestamp()) * 1000),
        _DATETIMES.map(lambda d: d.replace(tzinfo=UTC)),
    )


def _decimals(places: int | None) -> st.SearchStrategy[Decimal]:
    digits = st.integers(0, 4) if places is None else st.just(places)
    return digits.flatmap(lambda p: st.decimals(-(10**9), 10**9, places=p, allow_nan=False, allow_infinity=False))


def _numeric(number: st.SearchStrategy[Decimal]) -> st.SearchStrategy[Any]:
    return st.one_of(
        number.map(lambda d: format(d, "f")),
        _padded(number.map(lambda d: format(d, "f"))),
        number.map(lambda d: float(d)),
        number.filter(lambda d: d == d.to_integral_value()).map(int),
        number,
    )


def _decimal(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return _numeric(_decimals(param(bound, "places")))


def _money(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return _numeric(st.integers(0, 4).flatmap(lambda p: _decimals(p)))


def _int(bound: BoundTransform) -> st.SearchStrategy[Any]:
    n = st.integers(-(10**12), 10**12)
    return st.one_of(n, n.map(str), _padded(n.map(str)), n.map(lambda i: f"{i}.0"), n.map(float))


def _bool(bound: BoundTransform) -> st.SearchStrategy[Any]:
    true_values = param(bound, "true_values") or tuple(TRUE_WORDS)
    false_values = param(bound, "false_values") or tuple(FALSE_WORDS)
    words = st.sampled_from(sorted(set(true_values) | set(false_values)))
    return st.one_of(st.booleans(), st.sampled_from([0, 1]), _padded(_cased(words)))


def _country(bound: BoundTransform) -> st.SearchStrategy[Any]:
    codes = st.sampled_from(sorted(ALPHA2 | set(ALPHA3)))
    names = st.sampled_from(sorted(NAMES))
    return _padded(_cased(st.one_of(codes, names)))


def _map(bound: BoundTransform) -> st.SearchStrategy[Any]:
    table = param(bound, "table")
    return st.sampled_from(list(table))


def _nullable_text(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), st.just(""), TEXT)


def _join(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return st.lists(_item(param(bound, "sep"), stripped=False), max_size=5)


def _split(bound: BoundTransform) -> st.SearchStrategy[Any]:
    sep = param(bound, "sep")
    pad = st.sampled_from(["", " ", "  "])
    glue = st.tuples(pad, pad).map(lambda t: t[0] + sep + t[1])
    return st.lists(st.tuples(_item(sep, stripped=True), glue), max_size=5).map(_joined)


def _joined(parts: list[tuple[str, str]]) -> str:
    if not parts:
        return ""
    return "".join(item + glue for item, glue in parts[:-1]) + parts[-1][0]


def _first(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return st.lists(TEXT, max_size=3)


def _str(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return st.one_of(TEXT, st.integers(), st.booleans(), _decimals(None))


def _empty_to_none(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return st.one_of(TEXT, st.sampled_from(["", " ", "\t", "\u00a0"]))


def _lookup(bound: BoundTransform) -> st.SearchStrategy[Any]:
    return st.one_of(st.from_regex(r"[1-9][0-9]{0,11}", fullmatch=True), st.integers(1, 10**12 - 1))


def _gid(bound: BoundTransform) -> st.SearchStrategy[Any]:
    kind = param(bound, "type")
    return st.integers(1, 10**13).map(lambda n: f"gid://shopify/{kind}/{n}")


VALID_INPUTS: dict[str, Strategy] = {
    "strip": _text,
    "lower": _text,
    "upper": _text,
    "title": _text,
    "truncate": _text,
    "regex_replace": _text,
    "split_name": _text,
    "empty_to_none": _empty_to_none,
    "str": _str,
    "email": _email,
    "phone_e164": _phone,
    "date": _date,
    "datetime": _datetime,
    "decimal": _decimal,
    "money": _money,
    "add_tax": _money,
    "int": _int,
    "bool": _bool,
    "country_iso2": _country,
    "map": _map,
    "default": _nullable_text,
    "template": _nullable_text,
    "coalesce": _nullable_text,
    "join": _join,
    "split": _split,
    "first": _first,
    "lookup": _lookup,
    "gid": _gid,
}
"""Transform name → (bound transform → strategy of native values its step accepts)."""

CLEANERS = frozenset({"strip", "empty_to_none", "default", "coalesce", "lower", "upper"})
"""Steps that only tidy a value: a pipeline's inputs are drawn for the first step after them."""


def pipeline_strategy(steps: Sequence[BoundTransform]) -> st.SearchStrategy[Any]:
    """Valid native inputs for a whole pipeline: the strategy of its first step that is not a
    mere clean-up (``strip | email`` → e-mail addresses, padded, which ``strip`` keeps valid)."""
    assert steps, "an empty pipeline has no transform strategy; draw by the canonical type"
    chosen = next((s for s in steps if s.name not in CLEANERS), steps[0])
    return VALID_INPUTS[chosen.name](chosen)
