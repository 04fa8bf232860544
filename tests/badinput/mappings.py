# ruff: noqa: E501  (the exact messages are the corpus: kept whole, one per line)
"""The bad-mapping corpus: every kind of mistake an integrator makes in a mapping file, with its
exact outcome.

Each case is one edit to the shipped ``mappings/shopify.yaml`` (the file integrators copy) and one
row of the mapping table in docs/reliability.md (``test_mappings.py`` runs each). ``issues`` are the
exact lines ``synchub mappings check`` prints for it (``file:line:column: message (hint)``); a
broken file is never loaded, and the other files checked with it are still checked and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SHOPIFY = Path(__file__).resolve().parents[2] / "mappings" / "shopify.yaml"


@dataclass(frozen=True)
class MappingCase:
    name: str
    what: str
    old: str
    """Text of the shipped file to replace (its first occurrence); "" for the whole file."""
    new: str
    issues: tuple[str, ...]

    def text(self) -> str:
        original = SHOPIFY.read_text(encoding="utf-8")
        if not self.old:
            return self.new
        assert self.old in original, f"{self.name}: {self.old!r} is not in mappings/shopify.yaml"
        return original.replace(self.old, self.new, 1)


F = "shopify.yaml"

MAPPING_CASES: list[MappingCase] = [
    MappingCase(
        "empty-file",
        "an empty file",
        "",
        "",
        ("shopify.yaml:1:1: a mapping file must be a YAML mapping with `system` and `entities`",),
    ),
    MappingCase(
        "not-a-mapping",
        "a YAML list instead of a mapping",
        "",
        "- system\n- shopify\n",
        ("shopify.yaml:1:1: a mapping file must be a YAML mapping with `system` and `entities`",),
    ),
    MappingCase(
        "yaml-syntax",
        "an unclosed bracket",
        "native: firstName",
        "native: [firstName",
        ("shopify.yaml:29:18: YAML syntax: expected ',' or ']', but got ':'",),
    ),
    MappingCase(
        "tab-indent",
        "a tab used for indentation",
        "        native: lastName",
        "\tnative: lastName",
        ("shopify.yaml:31:1: YAML syntax: found character '\\t' that cannot start any token",),
    ),
    MappingCase(
        "control-character",
        "a control character pasted in",
        "native: firstName",
        "native: first\x1fName",
        ("shopify.yaml:28:22: YAML syntax: character 0x001f is not allowed in YAML",),
    ),
    MappingCase(
        "python-tag",
        "a YAML tag that would build a Python object",
        "native: firstName",
        "native: !!python/object:os.system firstName",
        (
            "shopify.yaml:28:17: YAML syntax: could not determine a constructor for the tag 'tag:yaml.org,2002:python/object:os.system'",
        ),
    ),
    MappingCase(
        "unknown-top-key",
        "a misspelt top-level key",
        "version: 1",
        "versoin: 1",
        ("shopify.yaml:12:1: unknown key 'versoin' (did you mean 'version'?)",),
    ),
    MappingCase(
        "wrong-version",
        "a file format version synchub does not know",
        "version: 1",
        "version: 2",
        ("shopify.yaml:12:10: version: Input should be 1",),
    ),
    MappingCase(
        "unknown-entity",
        "an entity synchub does not have",
        "  customer:",
        "  custmer:",
        ("shopify.yaml:16:3: unknown entity 'custmer' (did you mean 'customer'?)",),
    ),
    MappingCase(
        "missing-required-key",
        "an entity without its id path",
        "    id: id\n",
        "",
        ("shopify.yaml:21:5: missing required key 'id'",),
    ),
    MappingCase(
        "duplicate-key",
        "a key given twice",
        "        native: firstName\n",
        "        native: firstName\n        native: name\n",
        ("shopify.yaml:29:9: duplicate key 'native' (first at line 28)",),
    ),
    MappingCase(
        "unknown-field-key",
        "a misspelt key in a field",
        "        native: lastName\n        transform: strip",
        "        native: lastName\n        transfrom: strip",
        ("shopify.yaml:32:9: unknown key 'transfrom' (did you mean 'transform' or 'out_transform'?)",),
    ),
    MappingCase(
        "unknown-canonical",
        "a canonical field that does not exist",
        "canonical: first_name",
        "canonical: frist_name",
        (
            "shopify.yaml:27:20: canonical path 'frist_name': Customer has no field 'frist_name' (did you mean 'first_name' or 'last_name'?)",
        ),
    ),
    MappingCase(
        "wrong-type",
        "a number where a path belongs",
        "native: firstName",
        "native: 5",
        ("shopify.yaml:28:17: entities.customer.fields.0.native: Input should be a valid string",),
    ),
    MappingCase(
        "bad-native-path",
        "a native path with an empty step",
        "native: firstName",
        "native: first..Name",
        ("shopify.yaml:28:23: bad native path 'first..Name': expected a field name at '.Name'",),
    ),
    MappingCase(
        "unknown-transform",
        "a misspelt transform",
        "transform: email",
        "transform: emial",
        ("shopify.yaml:35:20: unknown transform 'emial' (did you mean 'email' or 'decimal'?)",),
    ),
    MappingCase(
        "bad-transform-argument",
        "a transform argument of the wrong type",
        'phone_e164(region="PL")',
        "phone_e164(region=48)",
        ("shopify.yaml:38:20: phone_e164: parameter 'region': Input should be a valid string (got 48)",),
    ),
    MappingCase(
        "unknown-transform-argument",
        "a misspelt transform argument",
        'phone_e164(region="PL")',
        'phone_e164(regoin="PL")',
        ("shopify.yaml:38:20: phone_e164(region='PL') has no parameter 'regoin' (did you mean 'region'?)",),
    ),
    MappingCase(
        "unknown-direction",
        "a misspelt direction",
        "direction: in",
        "direction: inn",
        (
            "shopify.yaml:71:20: entities.customer.fields.13.direction: Input should be 'both', 'in' or 'out' (did you mean 'in'?)",
        ),
    ),
    MappingCase(
        "unknown-owner",
        "a misspelt owner rule",
        "owner: newest",
        "owner: newset",
        (
            "shopify.yaml:79:16: unknown owner 'newset': use hub, newest, fill, union, manual or a system name (did you mean 'newest'?)",
        ),
    ),
    MappingCase(
        "array-one-side",
        "[] on one side of a field only",
        "canonical: emails[0]",
        "canonical: emails[]",
        (
            "shopify.yaml:33:9: canonical 'emails[]' and native 'defaultEmailAddress.emailAddress' must have the same number of []",
        ),
    ),
    MappingCase(
        "canonical-twice",
        "two fields writing one canonical path",
        "canonical: last_name",
        "canonical: first_name",
        (
            "shopify.yaml:30:9: canonical path 'first_name' is also written by field #1 on the way in (set direction on one of them)",
        ),
    ),
    MappingCase(
        "not-invertible",
        "a `both` field whose transform has no way back",
        "        native: firstName\n        transform: strip",
        "        native: firstName\n        transform: truncate(5)",
        (
            "shopify.yaml:29:20: field is `both` but transform 'truncate' has no inverse (add an out_transform for the way out, or set direction: in)",
        ),
    ),
    MappingCase(
        "unknown-identity",
        "an identity key that is no field",
        "identity: [emails, phones, loyalty_ids]",
        "identity: [emails, phone, loyalty_ids]",
        ("shopify.yaml:24:24: canonical path 'phone': Customer has no field 'phone' (did you mean 'phones'?)",),
    ),
]


def _code(text: str) -> str:
    """Inline code that may hold backticks, tabs, control characters and line ends."""
    text = text.replace("\t", "\\t").replace("\x1f", "\\x1f").replace("\n", "⏎").replace("|", "\\|")
    return f"`` {text} ``" if text else "(nothing)"


def mapping_table() -> str:
    """The corpus as the Markdown table in docs/reliability.md (a test keeps the two equal)."""
    rows = [
        "| case | mistake (in a copy of `mappings/shopify.yaml`) | `synchub mappings check` says (exit status 1) |",
        "| --- | --- | --- |",
    ]
    for c in MAPPING_CASES:
        if c.old:
            edit = f"{_code(c.old.strip(' ').rstrip(chr(10)))} → {_code(c.new.strip(' ').rstrip(chr(10)))}"
        else:
            edit = f"the whole file: {_code(c.new)}"
        said = "<br>".join(_code(i) for i in c.issues)
        rows.append(f"| `{c.name}` — {c.what} | {edit} | {said} |")
    return "\n".join(rows)
