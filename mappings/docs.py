"""Generates ``docs/transforms.md``, the transform reference, from the registered transforms.

Everything in it comes from the code — each transform's signature, docstring, inverse and
examples — so it cannot drift; a test fails when the committed file is stale. Regenerate with
``synchub mappings docs`` or ``uv run python -m mappings.docs``.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from mappings.registry import IDENTITY, Ex, TransformDef, all_transforms

DOCS_PATH = Path(__file__).resolve().parent.parent / "docs" / "transforms.md"

_HEADER = """\
# Transforms

<!-- Generated from mappings/transforms/ by `synchub mappings docs` (or `uv run python -m mappings.docs`).
     Do not edit: change the transform's docstring or examples and regenerate. -->

This reference is generated from the code: every example below is also a test
(`tests/test_transforms.py`). How pipelines are written is described in
[mapping-files.md](mapping-files.md).

Reading the tables: the *transform* column is the step as you would write it in a mapping file
(Python literals: `"text"`, `True`, `None`); *input* and *output* are shown as JSON, with
`Decimal("19.90")`, `date("…")` and `datetime("…")` for values JSON has no type for. *rejected*
means the value fails with a field error naming the transform, and the record is dead-lettered.

A missing or `null` value skips every transform except those marked *accepts null*.
**Reversible** says what a `both` field does when writing back to the system:

* *yes (exact inverse)* — the step is reversed (`decimal` writes the number as text again);
* *normaliser* — nothing to undo: the output is already a valid native value (`strip`, `email`);
* *no* — the field needs an `out_transform` (or `direction: in`).
"""


def _visible(text: str) -> str:
    """JSON text with invisible characters (zero-width, BOM, direction marks) spelt as escapes."""
    return "".join(f"\\u{ord(c):04x}" if unicodedata.category(c) in ("Cf", "Cc") else c for c in text)


def _literal(value: Any) -> str:
    """A Python literal, as a mapping file's ``transform:`` string would spell it."""
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, str):
        return _visible(json.dumps(value, ensure_ascii=False))
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, tuple):
        return "(" + ", ".join(_literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _value(value: Any) -> str:
    """A value as JSON, with readable spellings for the types JSON lacks."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _visible(json.dumps(value, ensure_ascii=False))
    if isinstance(value, Decimal):
        return f'Decimal("{value}")'
    if isinstance(value, datetime):
        return f'datetime("{value.isoformat()}")'
    if isinstance(value, date):
        return f'date("{value.isoformat()}")'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_value(k)}: {_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _code(text: str) -> str:
    """An inline code span that is safe inside a table cell."""
    text = text.replace("|", "\\|")
    fence = "``" if "`" in text else "`"
    pad = " " if fence == "``" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _step(definition: TransformDef, ex: Ex) -> str:
    parts = [_literal(a) for a in ex.args] + [f"{k}={_literal(v)}" for k, v in ex.kwargs.items()]
    return f"{definition.name}({', '.join(parts)})" if parts else definition.name


def _first_sentence(doc: str) -> str:
    paragraph = doc.strip().split("\n\n")[0].replace("\n", " ")
    end = paragraph.find(". ")
    return paragraph if end < 0 else paragraph[: end + 1]


def _reversible(definition: TransformDef) -> str:
    inverse = definition.inverse
    if inverse is None:
        return "no — give a `both` field an `out_transform`"
    if inverse is IDENTITY:
        return "normaliser (output is a valid native value)"
    kind = (
        "yes (exact inverse, when its params allow one)"
        if hasattr(inverse, "check_invertible")
        else ("yes (exact inverse)")
    )
    doc = " ".join((inverse.__doc__ or "").split())
    return f"{kind} — way out: {doc}" if doc else kind


def _example_row(definition: TransformDef, ex: Ex) -> str:
    given = _code(_value(ex.input))
    if ex.record is not None:
        given += f"<br>record: {_code(_value(ex.record))}"
    result = "rejected" if ex.fails else _code(_value(ex.output))
    if ex.note:
        result += f" — *{ex.note}*"
    return f"| {_code(_step(definition, ex))} | {given} | {result} |"


def _section(definition: TransformDef) -> list[str]:
    lines = [f"## {definition.name}", "", f"`{definition.signature}`", "", definition.doc.strip(), ""]
    facts = [f"**Reversible:** {_reversible(definition)}"]
    if definition.accepts_none:
        facts.append("**Accepts null:** yes")
    if definition.context:
        facts.append("**Reads the whole record:** yes")
    lines += ["  \n".join(facts), "", "| transform | input | output |", "| --- | --- | --- |"]
    lines += [_example_row(definition, ex) for ex in definition.examples]
    lines.append("")
    return lines


def render_transforms_md() -> str:
    """The full text of ``docs/transforms.md``; deterministic (sorted by name)."""
    transforms = all_transforms()
    lines = [_HEADER, "| transform | what it does | reversible |", "| --- | --- | --- |"]
    for name, definition in transforms.items():
        way = _reversible(definition).split(" — ")[0].split(" (")[0]
        summary = _first_sentence(definition.doc).replace("|", "\\|")
        lines.append(f"| [`{name}`](#{name}) | {summary} | {way} |")
    lines.append("")
    for definition in transforms.values():
        lines += _section(definition)
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> None:
    """Write the reference to ``argv[0]`` (default: docs/transforms.md)."""
    args = sys.argv[1:] if argv is None else argv
    target = Path(args[0]) if args else DOCS_PATH
    target.write_text(render_transforms_md(), encoding="utf-8")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
