"""Load-time errors: every mistake an integrator can make is named with file:line:column.

Table-driven: each row is (what is wrong, an edit to a valid file, the expected line:column,
text the message must contain, the expected hint or None).
"""

from __future__ import annotations

import textwrap

import pytest

from mappings.loader import check_text

VALID = textwrap.dedent(
    """\
    system: shopify
    entities:
      customer:
        native: Customer
        id: id
        updated_at: updatedAt
        identity: [emails, phones]
        fields:
          - canonical: first_name
            native: firstName
            transform: strip | title
          - canonical: emails[0]
            native: email
            transform: email
          - canonical: consents.email.granted
            native: emailMarketingConsent.marketingState
            transform:
              - map: {SUBSCRIBED: true, UNSUBSCRIBED: false}
            owner: newest
    """
)


def test_the_valid_file_loads():
    mapping, issues = check_text(VALID, "m.yaml")
    assert issues == []
    assert mapping is not None and set(mapping.entities) == {"customer"}


CASES = [
    ("misspelt transform", ("strip | title", "strip | titel"), (11, 28), "unknown transform 'titel'", "'title'"),
    ("misspelt transform in a list", ("- map:", "- mapp:"), (18, 13), "unknown transform 'mapp'", "'map'"),
    (
        "unknown canonical field",
        ("canonical: first_name", "canonical: frist_name"),
        (9, 20),
        "Customer has no field 'frist_name'",
        "'first_name'",
    ),
    (
        "unknown nested canonical field",
        ("consents.email.granted", "consents.email.granteed"),
        (15, 35),
        "Consent has no field 'granteed'",
        "'granted'",
    ),
    ("unknown entity", ("  customer:", "  custmer:"), (3, 3), "unknown entity 'custmer'", "'customer'"),
    ("unknown key in a field", ("owner: newest", "ownr: newest"), (19, 9), "unknown key 'ownr'", "'owner'"),
    ("unknown key in an entity", ("    identity:", "    identiy:"), (7, 5), "unknown key 'identiy'", "'identity'"),
    (
        "bad direction",
        ("transform: email\n", "transform: email\n        direction: inn\n"),
        (15, 20),
        "Input should be",
        "'in'",
    ),
    ("unknown owner", ("owner: newest", "owner: newset"), (19, 16), "unknown owner 'newset'", "'newest'"),
    ("missing required key", ("    id: id\n", ""), (4, 5), "missing required key 'id'", None),
    (
        "duplicate key",
        ("        native: firstName\n", "        native: firstName\n        native: name\n"),
        (11, 9),
        "duplicate key 'native'",
        None,
    ),
    ("bad path syntax", ("native: firstName", "native: first..Name"), (10, 23), "bad native path", None),
    ("bad transform argument", ("transform: email\n", 'transform: truncate(n="x")\n'), (14, 20), "truncate", None),
    (
        "non-invertible both field",
        ("transform: strip | title", "transform: truncate(5)"),
        (11, 20),
        "has no inverse",
        "out_transform",
    ),
    (
        "non-reversible value table",
        ("UNSUBSCRIBED: false}", "UNSUBSCRIBED: false, NOT_SUBSCRIBED: false}"),
        (18, 11),
        "cannot be reversed",
        "out_transform",
    ),
    ("array on one side only", ("canonical: emails[0]", "canonical: emails[]"), (12, 9), "same number of []", None),
    ("YAML syntax error", ("native: Customer", "native: [Customer"), (5, 7), "YAML syntax", None),
    (
        "unknown canonical identity path",
        ("identity: [emails, phones]", "identity: [emails, phone]"),
        (7, 24),
        "Customer has no field 'phone'",
        "'phones'",
    ),
    (
        "out_transform on an in field",
        ("owner: newest", "owner: newest\n        direction: in\n        out_transform: strip"),
        (21, 24),
        "out_transform is only used on `both` fields",
        None,
    ),
]


@pytest.mark.parametrize(("edit", "line_col", "message", "hint"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_load_errors_point_at_the_mistake(edit, line_col, message, hint):
    old, new = edit
    assert old in VALID
    text = VALID.replace(old, new, 1)
    mapping, issues = check_text(text, "m.yaml")
    assert mapping is None
    rendered = "\n".join(str(i) for i in issues)
    match = [i for i in issues if message in i.message]
    assert match, f"no issue containing {message!r} in:\n{rendered}"
    issue = match[0]
    assert (issue.line, issue.column) == line_col, rendered
    assert issue.file == "m.yaml"
    if hint is None:
        return
    assert issue.hint is not None and hint in issue.hint, rendered


def test_every_problem_is_listed_not_just_the_first():
    text = VALID.replace("strip | title", "strip | titel").replace("canonical: emails[0]", "canonical: emial[0]")
    mapping, issues = check_text(text, "m.yaml")
    assert mapping is None
    assert len(issues) == 2


def test_two_fields_writing_one_canonical_path_is_refused():
    text = VALID.replace("canonical: emails[0]", "canonical: first_name")
    mapping, issues = check_text(text, "m.yaml")
    assert mapping is None
    assert any("also written by field #1" in i.message for i in issues)
