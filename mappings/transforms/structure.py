"""Lists and whole-record transforms: ``join``, ``split``, ``first``, ``coalesce``, ``template``."""

from __future__ import annotations

import functools
import string
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from mappings.errors import TransformArgError, TransformError
from mappings.registry import IDENTITY, Context, Ex, ExP, Fails, transform
from mappings.transforms._util import PathKey, get_path, parse_path, plain, type_error

Separator = Annotated[str, Field(min_length=1)]

# --- join / split -------------------------------------------------------------------------------


def _item_text(item: Any) -> str:
    if isinstance(item, str):
        return item
    if isinstance(item, Decimal):
        return plain(item)
    if isinstance(item, list | tuple | dict | set):
        raise TransformError(f"cannot join a nested {type(item).__name__}")
    return str(item)


def join_out(value: Any, sep: str = " ") -> list[str]:
    """Text → list: split on ``sep``, dropping empty parts (``""`` → ``[]``)."""
    if not isinstance(value, str):
        raise type_error(value, "text")
    return [part for part in value.split(sep) if part]


def _check_join_invertible(sep: str = " ") -> None:
    if not sep:
        raise TransformArgError("join with an empty separator cannot be split again; give the field an out_transform")


join_out.__dict__["check_invertible"] = _check_join_invertible


@transform(
    examples=[
        Ex(["ul. Długa", "5/7"], "ul. Długa 5/7"),
        ExP(["vip", "b2b"], "vip,b2b", ","),
        ExP(["a", None, "", "b"], "a; b", sep="; ", note="null and empty items are skipped"),
        Ex([], ""),
        Ex(["Locker", 12], "Locker 12"),
        Fails("already text"),
        Fails([["nested"]]),
    ],
    inverse=join_out,
)
def join(value: Any, sep: str = " ") -> str:
    """Join a list into one text with ``sep`` between the items (address lines, tag lists).

    Null and empty items are skipped; numbers are written as text. The way out splits on
    ``sep`` again, dropping empty parts — exact as long as no item contains ``sep``.
    """
    if not isinstance(value, list | tuple):
        raise type_error(value, "a list")
    return sep.join(_item_text(item) for item in value if item is not None and item != "")


def split_out(value: Any, sep: Separator = ",") -> str:
    """List → text: the items joined with ``sep`` (``["a", "b"]`` → ``"a,b"``)."""
    if not isinstance(value, list | tuple):
        raise type_error(value, "a list")
    return sep.join(_item_text(item) for item in value if item is not None and item != "")


@transform(
    examples=[
        Ex("vip, b2b ,newsletter", ["vip", "b2b", "newsletter"]),
        Ex("", []),
        Ex(" , ,", [], note="empty parts are dropped"),
        ExP("a;b", ["a", "b"], ";"),
        ExP("a|b", ["a|b"], sep=";"),
        Fails(["vip"], note="already a list: no split needed"),
    ],
    inverse=split_out,
)
def split(value: Any, sep: Separator = ",") -> list[str]:
    """Split text into a list on ``sep``, trimming each part and dropping empty ones.

    Made for comma-separated tags (Shopify's ``"vip, b2b"``). The way out joins the list with
    ``sep`` exactly (``"vip,b2b"`` — no space added), which reads back to the same list.
    """
    if not isinstance(value, str):
        raise type_error(value, "text")
    return [part for raw in value.split(sep) if (part := raw.strip())]


def first_out(value: Any) -> list[Any]:
    """Value → a one-item list (``"a"`` → ``["a"]``)."""
    return [value]


@transform(
    examples=[
        Ex(["+48600100200", "+48600100300"], "+48600100200"),
        Ex([], None),
        Ex([{"id": 1}], {"id": 1}),
        Fails("+48600100200", note="not a list"),
    ],
    inverse=first_out,
)
def first(value: Any) -> Any:
    """The first item of a list, or null for an empty list.

    For a system that has a list where the canonical model has one value. The way out writes
    a one-item list. (To take the first element *inside* a path, write ``emails[0]`` instead.)
    """
    if isinstance(value, list | tuple):
        return value[0] if value else None
    raise type_error(value, "a list")


# --- coalesce -----------------------------------------------------------------------------------


@transform(
    examples=[
        ExP("+48600100200", "+48600100200", "shipping.phone"),
        ExP(
            None,
            "+48600100300",
            "billing.phone",
            "shipping.phone",
            record={"billing": {"phone": None}, "shipping": {"phone": "+48600100300"}},
        ),
        ExP(
            "",
            "anna@example.pl",
            "emails[0]",
            record={"emails": ["anna@example.pl"]},
            note="empty text counts as missing",
        ),
        ExP(None, None, "nowhere", record={}),
    ],
    inverse=IDENTITY,
    accepts_none=True,
    context=True,
)
def coalesce(value: Any, ctx: Context, *paths: str) -> Any:
    """The field's value, or, when it is null or empty text, the first non-empty value found at
    ``paths`` in the same source record (dotted paths, ``[0]`` for a list index).

    For data that lives in one of several places (a phone on the customer or on the default
    address). Nothing found gives null. The way out writes the field's own native path only.
    """
    if value is not None and value != "":
        return value
    record = ctx.record
    for path in paths:
        try:
            keys = parse_path(path)
        except ValueError as exc:
            raise TransformError(str(exc)) from None
        found = get_path(record, keys)
        if found is not None and found != "":
            return found
    return None


# --- template -----------------------------------------------------------------------------------

_FORMATTER = string.Formatter()
TemplatePart = tuple[str, tuple[PathKey, ...] | None, str, str | None]


@functools.lru_cache(maxsize=256)
def _template(fmt: str) -> tuple[TemplatePart, ...]:
    parts: list[TemplatePart] = []
    for literal, name, spec, conversion in _FORMATTER.parse(fmt):
        if name is None:
            parts.append((literal, None, "", None))
            continue
        if not name or name[0].isdigit():
            raise ValueError("template fields need names, e.g. {first_name} (not {} or {0})")
        if spec and "{" in spec:
            raise ValueError("nested {fields} inside a format spec are not supported")
        parts.append((literal, parse_path(name), spec or "", conversion))
    return tuple(parts)


def _valid_template(fmt: str) -> str:
    _template(fmt)  # raises ValueError (unbalanced braces, unnamed fields, bad paths)
    return fmt


Template = Annotated[str, AfterValidator(_valid_template)]

_PERSON = {"first_name": "Jan", "last_name": "Kowalski", "address": {"city": "Kraków", "postal_code": "30-001"}}


@transform(
    examples=[
        ExP(None, "Jan Kowalski", "{first_name} {last_name}", record=_PERSON),
        ExP(None, "30-001 Kraków", "{address.postal_code} {address.city}", record=_PERSON),
        ExP(None, "Jan", "{first_name} {last_name}", record={"first_name": "Jan"}, note="missing → empty"),
        ExP(None, None, "{company}", record=_PERSON, note="empty result → null"),
        ExP("KRA010", "Paczkomat KRA010", "Paczkomat {value}", record={}),
        ExP(None, "Total: 19.90", "Total: {total:.2f}", record={"total": Decimal("19.9")}),
        Fails(None, "{total:.2f}", record={"total": "abc"}, note="format spec does not fit the value"),
    ],
    inverse=None,
    accepts_none=True,
    context=True,
)
def template(value: Any, ctx: Context, fmt: Template) -> str | None:
    """Build text from the whole source record with a Python format string: ``{first_name}``,
    ``{address.city}``, ``{lines[0].sku}``, format specs such as ``{total:.2f}``.

    ``{value}`` is the field's own incoming value. Missing or null fields render as nothing;
    the result is trimmed and runs of whitespace collapse to one space, so a missing middle
    part leaves no double space; an empty result is null. The format is checked when the mapping
    loads. Typical use: an ``out`` field building a full name (``{first_name} {last_name}``) for
    a system with one name field. It has no inverse.
    """
    record = ctx.record
    out: list[str] = []
    for literal, path, spec, conversion in _template(fmt):
        if literal:
            out.append(literal)
        if path is None:
            continue
        found = get_path(value, path[1:]) if path[0] == "value" else get_path(record, path)
        if found is None:
            continue
        if conversion is not None:
            found = repr(found) if conversion == "r" else ascii(found) if conversion == "a" else str(found)
        if not spec and isinstance(found, Decimal):
            out.append(plain(found))
            continue
        try:
            out.append(format(found, spec))
        except (TypeError, ValueError) as exc:
            raise TransformError(f"cannot format {found!r} with {{:{spec}}}: {exc}") from None
    return " ".join("".join(out).split()) or None
