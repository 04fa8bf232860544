"""Fuzzing the parsers of untrusted text: the only failures allowed are our typed, located errors.

Mapping files and config files are written by people; a typo must give ``file:line`` and a message,
never a traceback. Hypothesis mutates the shipped files (deleting, duplicating and swapping lines,
inserting YAML/TOML punctuation) and throws arbitrary text at both loaders.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import ConfigFileError, parse_config
from mappings.loader import check_text

ROOT = Path(__file__).resolve().parents[2]
SHOPIFY = (ROOT / "mappings" / "shopify.yaml").read_text()
CONFIG = (ROOT / "config.example.toml").read_text()
NOISE = st.sampled_from(
    [
        "",
        ":",
        "- ",
        "  ",
        "{",
        "}",
        "[",
        "]",
        "'",
        '"',
        "|",
        "&a",
        "*a",
        "!!python/object",
        "\t",
        "=",
        "#",
        "\x00",
        "é",
        "🌸",
        "\u202e",
    ]
)


def mutate(text: str, data: st.DataObject) -> str:
    lines = text.splitlines()
    for _ in range(data.draw(st.integers(1, 6))):
        if not lines:
            break
        i = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["delete", "duplicate", "swap", "noise", "truncate"]))
        if action == "delete":
            del lines[i]
        elif action == "duplicate":
            lines.insert(i, lines[i])
        elif action == "swap":
            j = data.draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
        elif action == "noise":
            pos = data.draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:pos] + data.draw(NOISE) + lines[i][pos:]
        else:
            lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    return "\n".join(lines)


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.data())
def test_mutated_mapping_files_give_located_issues_never_a_crash(data: st.DataObject) -> None:
    text = mutate(SHOPIFY, data)
    mapping, issues = check_text(text, "shopify.yaml")
    assert (mapping is None) == bool(issues)
    for issue in issues:
        assert issue.file == "shopify.yaml"
        assert issue.line >= 1 and issue.message


@FUZZ
@given(st.text(max_size=300))
def test_arbitrary_text_as_a_mapping_file(text: str) -> None:
    mapping, issues = check_text(text, "x.yaml")
    assert mapping is None and issues


@FUZZ
@given(st.data())
def test_mutated_config_files_give_located_issues_never_a_crash(data: st.DataObject) -> None:
    text = mutate(CONFIG, data)
    env = {
        name: "x"
        for name in (
            "SF_CLIENT_ID",
            "SF_USERNAME",
            "SHOPIFY_PL_TOKEN",
            "SHOPIFY_PL_WEBHOOK_SECRET",
            "TRYTON_PASSWORD",
            "INPOST_ORG_ID",
            "INPOST_TOKEN",
        )
    }
    try:
        parse_config(text, Path("config.toml"), environ=env)
    except ConfigFileError as exc:
        assert exc.issues
        for issue in exc.issues:
            assert issue.file == "config.toml" and issue.message
            assert issue.line is None or 1 <= issue.line <= text.count("\n") + 1


def test_a_control_character_is_located_not_a_traceback() -> None:
    mapping, issues = check_text("system: shopify\nversion: 1\ndescription: a\x1fb\n", "m.yaml")
    assert mapping is None
    [issue] = issues
    assert (issue.line, issue.column) == (3, 15)
    assert "character 0x001f is not allowed" in issue.message


def test_a_scalar_yaml_cannot_construct_is_a_located_issue() -> None:
    # found by the fuzz pass: PyYAML raised a bare ValueError (year 0) with no position
    _, issues = check_text("system: shop\nentities:\n  customer:\n    since: 2024-13-45\n", "x.yaml")
    assert [(i.line, i.column) for i in issues] == [(4, 12)]
    assert "'2024-13-45' cannot be read as a timestamp: month must be in 1..12" in issues[0].message
    _, issues = check_text("0000-0-0T0:00:00", "x.yaml")
    assert issues and "year 0 is out of range" in issues[0].message
