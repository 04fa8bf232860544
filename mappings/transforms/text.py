"""Text transforms: whitespace and case, e-mail addresses, phone numbers, names, regex."""

from __future__ import annotations

import functools
import re
import unicodedata
import uuid
from datetime import date
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any, Literal

import phonenumbers
from pydantic import AfterValidator, Field

from mappings.errors import TransformError
from mappings.registry import IDENTITY, Ex, ExP, Fails, transform
from mappings.transforms._util import plain, type_error

# --- whitespace and case ------------------------------------------------------------------------


@transform(
    examples=[
        Ex("  Jan ", "Jan"),
        Ex("\tKowalski\n", "Kowalski"),
        Ex("   ", ""),
        Fails(42, note="not a string"),
    ],
    inverse=IDENTITY,
)
def strip(value: Any) -> str:
    """Remove leading and trailing whitespace (spaces, tabs, newlines, non-breaking spaces).

    Inner whitespace is kept. Only strings are accepted: a number here means the mapping points
    at the wrong field, and that should be seen rather than papered over.
    """
    if isinstance(value, str):
        return value.strip()
    raise type_error(value, "text")


@transform(examples=[Ex("Anna.NOWAK", "anna.nowak"), Ex("ŻÓŁW", "żółw"), Fails(1.5)], inverse=IDENTITY)
def lower(value: Any) -> str:
    """Lower-case the text (Unicode-aware: ``ŻÓŁW`` → ``żółw``)."""
    if isinstance(value, str):
        return value.lower()
    raise type_error(value, "text")


@transform(examples=[Ex("kra010", "KRA010"), Ex("pl", "PL"), Fails(["pl"])], inverse=IDENTITY)
def upper(value: Any) -> str:
    """Upper-case the text; handy for codes (locker points, SKUs, country and currency codes)."""
    if isinstance(value, str):
        return value.upper()
    raise type_error(value, "text")


_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")


def _cap_word(m: re.Match[str]) -> str:
    word = m.group(0).lower()
    head = word[0].title() + word[1:]
    if len(head) > 2 and head[1] in "'’":  # O'Neil, D'Artagnan — but McDonald's stays as is
        head = head[:2] + head[2].title() + head[3:]
    return head


@transform(
    examples=[
        Ex("JAN KOWALSKI", "Jan Kowalski"),
        Ex("anna-maria nowak-jeziorańska", "Anna-Maria Nowak-Jeziorańska"),
        Ex("o'neil", "O'Neil"),
        Ex("ul. marszałkowska 12a", "Ul. Marszałkowska 12a"),
        Fails(7),
    ],
    inverse=IDENTITY,
)
def title(value: Any) -> str:
    """Capitalise each word and lower-case the rest, for names typed in all caps or all lower.

    Words are runs of letters and digits; hyphens and spaces separate them, so double-barrelled
    names come out right (``Nowak-Jeziorańska``). A one-letter prefix with an apostrophe
    capitalises the next letter too (``O'Neil``), while ``McDonald's`` becomes ``Mcdonald's``:
    mixed-case names cannot be recovered from all-caps input, so use this only on fields that
    arrive badly cased. Digits do not start a capital (``12a`` stays ``12a``).
    """
    if isinstance(value, str):
        return _WORD.sub(_cap_word, value)
    raise type_error(value, "text")


@transform(
    examples=[Ex("", None), Ex("  ", None), Ex(" x ", " x "), Ex(0, 0, note="non-text passes unchanged")],
    inverse=IDENTITY,
)
def empty_to_none(value: Any) -> Any:
    """Turn an empty or whitespace-only string into null; anything else passes unchanged.

    Several systems (Shopify, most ERPs) send ``""`` for "not set". Put this first so an empty
    string means *cleared* rather than failing the next step (``email``, ``decimal``...).
    """
    if isinstance(value, str) and not value.strip():
        return None
    return value


@transform(
    examples=[
        Ex(12, "12"),
        Ex(Decimal("1.50"), "1.50"),
        Ex(Decimal("1E+3"), "1000"),
        Ex(True, "true"),
        Ex(2.5, "2.5"),
        Ex("x", "x"),
        Fails([1, 2], note="lists have no single text form"),
    ],
    inverse=IDENTITY,
)
def str_(value: Any) -> str:
    """Convert a scalar to text: numbers as written (decimals in plain notation, never ``1E+3``),
    booleans as ``true``/``false``, dates and timestamps in ISO 8601, ids and enum values as is.

    Use it for ids that one system sends as numbers and another as strings. Lists, objects and
    other values fail.
    """
    if isinstance(value, str):
        return value if type(value) is str else str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise TransformError("not a finite number")
        return plain(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise TransformError("not a finite number")
        text = repr(value)
        return plain(Decimal(text)) if "e" in text else text
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Enum):
        return str_(value.value)  # type: ignore[no-any-return]
    raise type_error(value, "a number, text, boolean or date")


@transform(
    examples=[
        ExP("Zamówienie dla Jana", "Zamówienie", 10),
        ExP("abc", "abc", n=5),
        Fails(5, 3),
    ],
    inverse=None,
)
def truncate(value: Any, n: Annotated[int, Field(ge=1)]) -> str:
    """Cut text to at most ``n`` characters.

    Meant for the way out, where a system limits a field's length (a Shopify note, a locker
    reference): put it in ``out_transform``. It loses data, so it has no inverse.
    """
    if isinstance(value, str):
        return value[:n]
    raise type_error(value, "text")


def _valid_regex(pattern: str) -> str:
    try:
        _compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from None
    return pattern


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


Regex = Annotated[str, AfterValidator(_valid_regex)]


@transform(
    examples=[
        ExP("PL 12-345", "12-345", r"^[A-Z]{2}\s*", ""),
        ExP("19,90", "19.90", ",", "."),
        ExP("+48 (600) 100-200", "+48600100200", r"[\s()-]", ""),
        ExP("2026/11/20", "20.11.2026", r"(\d{4})/(\d\d)/(\d\d)", r"\3.\2.\1"),
        Fails(1990, ",", "."),
    ],
    inverse=None,
)
def regex_replace(value: Any, pattern: Regex, repl: str) -> str:
    """Replace every match of ``pattern`` (Python ``re`` syntax) with ``repl`` (``\\1`` for groups).

    The pattern is checked when the mapping loads. Use it for the odd clean-up no other
    transform does — a decimal comma before ``decimal``, a country prefix before a postal code.
    It cannot be reversed; give a ``both`` field an ``out_transform``.
    """
    if not isinstance(value, str):
        raise type_error(value, "text")
    try:
        return _compile(pattern).sub(repl, value)
    except (re.error, IndexError) as exc:
        raise TransformError(f"bad replacement {repl!r}: {exc}") from None


@transform(
    examples=[
        ExP("Jan Kowalski", "Jan", part="first"),
        ExP("Jan Kowalski", "Kowalski", part="last"),
        ExP("Jan Maria  Kowalska-Nowak", "Jan Maria", part="first"),
        ExP("Jan Maria  Kowalska-Nowak", "Kowalska-Nowak", part="last"),
        ExP("Madonna", "Madonna", part="first"),
        ExP("Madonna", None, part="last"),
        ExP("   ", None, part="first"),
        Fails(["Jan", "Kowalski"], part="first"),
    ],
    inverse=None,
)
def split_name(value: Any, part: Literal["first", "last"]) -> str | None:
    """Take the first or last name out of a full name, for systems with one name field (Tryton).

    Rule: the last word is the last name, everything before it the first name(s) —
    ``Jan Maria Kowalski`` → ``Jan Maria`` / ``Kowalski``. A single word is a first name with no
    last name. Whitespace runs collapse to one space. Names written surname-first, or with
    multi-word surnames (``de la Cruz``), are split wrongly: there is no rule that gets those
    right without a dictionary. For the way out, build the full name with
    ``template("{first_name} {last_name}")``.
    """
    if not isinstance(value, str):
        raise type_error(value, "text")
    words = value.split()
    if not words:
        return None
    if part == "first":
        return " ".join(words[:-1]) if len(words) > 1 else words[0]
    return words[-1] if len(words) > 1 else None


# --- e-mail ------------------------------------------------------------------------------------

_LOCAL = r"[^\s@<>()\[\],;:\\\".\x00-\x1f\x7f]+(?:\.[^\s@<>()\[\],;:\\\".\x00-\x1f\x7f]+)*"
_LABEL = r"[^\W_](?:[\w-]*[^\W_])?"
_TLD = r"(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)"
_EMAIL = re.compile(rf"(?={_LOCAL}@)[^@]{{1,64}}@(?:{_LABEL}\.)+{_TLD}")


@transform(
    examples=[
        Ex("  Anna.Nowak@Example.PL ", "anna.nowak@example.pl"),
        Ex("jan+sklep@sub.domena.com.pl", "jan+sklep@sub.domena.com.pl"),
        Ex("Kasia@Żółw.pl", "kasia@żółw.pl", note="internationalised domains are kept in Unicode"),
        Ex("ann\u200b@example.pl\ufeff", "ann@example.pl", note="invisible characters (zero-width, BOM) are removed"),
        Fails("not-an-email"),
        Fails("jan@localhost", note="no dot in the domain"),
        Fails("jan kowalski@example.pl"),
        Fails("a@b@example.pl"),
        Fails("jan..k@example.pl"),
    ],
    inverse=IDENTITY,
)
def email(value: Any) -> str:
    """Normalise an e-mail address: strip whitespace and lower-case all of it; reject non-addresses.

    The *whole* address is lower-cased, the local part too: RFC 5321 allows case-sensitive
    mailboxes but no real provider has them, and e-mail is an identity key here — ``Anna@x.pl``
    and ``anna@x.pl`` must be the same customer.

    The check is deliberately simple and predictable: one ``@``; a local part of 1–64
    characters without spaces, quotes or ``<>()[],;:`` and no leading, trailing or double dot;
    a domain of dot-separated labels ending in a top-level domain of 2+ letters (or ``xn--``);
    at most 254 characters. Unicode (internationalised) addresses are accepted and kept as
    written, not converted to punycode. Whether the mailbox exists is not checked.

    Invisible format characters (zero-width spaces and joiners, byte-order marks, direction
    marks) are removed first: they arrive by copy and paste, are never part of a real address,
    and would otherwise make ``ann@x.pl`` with a zero-width space a second identity beside it.
    """
    if not isinstance(value, str):
        raise type_error(value, "text")
    text: str = value
    if not text.isascii():  # no ASCII character is a format (Cf) character: nothing to remove
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = text.strip().lower()
    if len(text) > 254 or _EMAIL.fullmatch(text) is None:
        raise TransformError("not a valid email address")
    return text


# --- phone numbers ------------------------------------------------------------------------------


def _known_region(region: str) -> str:
    region = region.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"unknown phone region {region!r} (use an ISO 3166 alpha-2 code such as 'PL')")
    return region


PhoneRegion = Annotated[str, AfterValidator(_known_region)]


# Valid E.164 numbers seen as results: such a number read again (a system echoing back what we
# wrote, in the canonical form already) is itself whatever the region, without parsing it again.
_VALID_E164: dict[str, None] = {}
_VALID_E164_MAX = 65536


def _to_e164(text: str, region: str) -> str | None:
    if text in _VALID_E164:
        return text
    result = _parse_e164(text, region)
    if result is not None:
        if len(_VALID_E164) >= _VALID_E164_MAX:
            _VALID_E164.clear()
        _VALID_E164[result] = None
    return result


@functools.lru_cache(maxsize=8192)
def _parse_e164(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@transform(
    examples=[
        Ex("600 100 200", "+48600100200"),
        Ex("+48 600-100-200", "+48600100200"),
        Ex("0048600100200", "+48600100200"),
        Ex("(22) 123 45 67", "+48221234567"),
        ExP("030 1234567", "+49301234567", region="DE"),
        ExP("+48 600 100 200", "+48600100200", region="DE", note="a + prefix wins over the region"),
        Ex(600100200, "+48600100200", note="numbers are read as their digits"),
        Fails("12"),
        Fails("600 100 20", note="one digit short"),
        Fails("call me"),
    ],
    inverse=IDENTITY,
)
def phone_e164(value: Any, region: PhoneRegion = "PL") -> str:
    """Normalise a phone number to E.164 (``+48600100200``); reject numbers that cannot exist.

    Numbers without a country prefix are read as numbers of ``region`` (ISO 3166 alpha-2,
    default ``PL``); ``+48``, ``0048`` and ``48`` prefixes are understood. The number must be
    *valid* for its country per Google's libphonenumber (right length and a prefix in use),
    which catches typos and truncated numbers without calling anyone. E.164 is the canonical
    form, so phones compare and deduplicate reliably.
    """
    if isinstance(value, str):
        text = value
    elif type(value) is int:
        text = str(value)
    else:
        raise type_error(value, "text")
    result = _to_e164(text, region)
    if result is None:
        raise TransformError(f"not a valid phone number (read as a {region} number if it has no +prefix)")
    return result
