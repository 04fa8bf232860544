"""`synchub mappings …` as an integrator runs it: through the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mappings.loader import SHIPPED_DIR

SYNCHUB = str(Path(sys.executable).with_name("synchub"))


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SYNCHUB, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env={"COLUMNS": "200", "PATH": ""}
    )


def test_check_passes_on_every_shipped_mapping():
    result = run("mappings", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in ("salesforce", "shopify", "tryton", "inpost"):
        assert f"{name}.yaml" in result.stdout
        assert f"{name}.test.yaml" in result.stdout


def test_a_misspelt_transform_fails_with_position_and_suggestion(tmp_path: Path):
    # Given a copy of a shipped mapping where one `lower` became `lowr`
    original = next(
        p
        for p in sorted(SHIPPED_DIR.glob("*.yaml"))
        if any("transform:" in ln and "lower" in ln.split("#")[0] for ln in p.read_text(encoding="utf-8").splitlines())
    )
    lines = original.read_text(encoding="utf-8").splitlines()
    target = next(i for i, line in enumerate(lines) if "transform:" in line and "lower" in line.split("#")[0])
    col = lines[target].index("lower") + 1
    lines[target] = lines[target].replace("lower", "lowr", 1)
    broken = tmp_path / original.name
    broken.write_text("\n".join(lines) + "\n", encoding="utf-8")
    # When it is checked
    result = run("mappings", "check", str(broken))
    # Then: exit 1, file:line:col of the misspelling, and the closest valid name
    assert result.returncode == 1
    assert f"{broken}:{target + 1}:{col}" in result.stderr
    assert "unknown transform 'lowr'" in result.stderr
    assert "'lower'" in result.stderr


def test_test_command_runs_the_shipped_cases_and_reports_counts():
    result = run("mappings", "test")
    assert result.returncode == 0, result.stdout[-3000:]
    summary = result.stdout.strip().splitlines()[-1]
    passed = int(summary.split()[0])
    assert passed >= 20 and summary.endswith("0 failed")


def test_test_command_fails_on_a_wrong_expectation(tmp_path: Path):
    for name in ("shopify.yaml", "shopify.test.yaml"):
        shutil.copy(SHIPPED_DIR / name, tmp_path / name)
    test_file = tmp_path / "shopify.test.yaml"
    text = test_file.read_text(encoding="utf-8")
    # flip one expected value: the runner must notice
    assert "first_name:" in text
    head, tail = text.split("first_name:", 1)
    _value, rest = tail.split("\n", 1)
    test_file.write_text(head + "first_name: Zzyzx-not-this\n" + rest, encoding="utf-8")
    result = run("mappings", "test", str(test_file))
    assert result.returncode == 1
    assert "FAIL" in result.stdout and "Zzyzx-not-this" in result.stdout


@pytest.mark.parametrize("direction", ["in", "out"])
def test_preview_maps_a_sample_both_ways(tmp_path: Path, direction: str):
    sample = SHIPPED_DIR / "samples" / "shopify-customer.json"
    if direction == "out":
        result = run(
            "mappings",
            "preview",
            str(SHIPPED_DIR / "shopify.yaml"),
            "--entity",
            "customer",
            "--input",
            str(sample),
            "--json",
        )
        assert result.returncode == 0, result.stderr
        canonical = json.loads(result.stdout)
        assert canonical["emails"] and "@" in canonical["emails"][0]
        sample = tmp_path / "canonical.json"
        sample.write_text(json.dumps(canonical), encoding="utf-8")
    result = run(
        "mappings",
        "preview",
        str(SHIPPED_DIR / "shopify.yaml"),
        "--entity",
        "customer",
        "--input",
        str(sample),
        "--direction",
        direction,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "customer #1" in result.stdout


def test_preview_shows_field_errors_and_exits_1(tmp_path: Path):
    sample = json.loads((SHIPPED_DIR / "samples" / "shopify-customer.json").read_text(encoding="utf-8"))
    sample["defaultEmailAddress"] = {"emailAddress": "nobody-at-nowhere"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(sample), encoding="utf-8")
    result = run("mappings", "preview", str(SHIPPED_DIR / "shopify.yaml"), "--entity", "customer", "--input", str(bad))
    assert result.returncode == 1
    assert "nobody-at-nowhere" in result.stdout and "email" in result.stdout


def test_schema_is_json_schema_of_the_file_format():
    result = run("mappings", "schema")
    assert result.returncode == 0
    schema = json.loads(result.stdout)
    assert schema["title"] == "synchub mapping file"
    assert {"system", "entities"} <= set(schema["properties"])
    committed = json.loads((SHIPPED_DIR.parent / "docs" / "mapping.schema.json").read_text(encoding="utf-8"))
    assert committed == schema, "docs/mapping.schema.json is stale: run `make docs`"


def test_a_test_file_with_a_typo_is_reported_with_position_and_suggestion(tmp_path: Path):
    shutil.copy(SHIPPED_DIR / "shopify.yaml", tmp_path / "shopify.yaml")
    bad = tmp_path / "shopify.test.yaml"
    text = "mapping: shopify.yaml\ncases:\n  - name: x\n    entity: customer\n    inptu: {}\n"
    bad.write_text(text, encoding="utf-8")
    result = run("mappings", "check", str(bad))
    assert result.returncode == 1
    assert f"{bad}:5:5: unknown key 'inptu'" in result.stderr
    assert "did you mean 'input'?" in result.stderr
