"""Bad mapping files: each mistake gets its exact, located message, the broken file is never loaded,
and the other files checked with it are still checked (``synchub mappings check``, the console
script an integrator runs, once over the whole corpus interleaved with good files)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mappings.errors import MappingFileError
from mappings.loader import SHIPPED_DIR, check_text, load_mapping
from tests.badinput.mappings import MAPPING_CASES, MappingCase, mapping_table

SYNCHUB = str(Path(sys.executable).with_name("synchub"))
NEIGHBOURS = ("tryton.yaml", "inpost.yaml")


@pytest.mark.parametrize("case", MAPPING_CASES, ids=lambda c: c.name)
def test_bad_mapping_file(case: MappingCase, tmp_path: Path):
    # The loader names exactly this mistake, where it is, and builds nothing
    mapping, issues = check_text(case.text(), "shopify.yaml")
    assert mapping is None
    assert tuple(str(i) for i in issues) == case.issues
    broken = tmp_path / "shopify.yaml"
    broken.write_text(case.text(), encoding="utf-8")
    with pytest.raises(MappingFileError):
        load_mapping(broken)


def test_one_check_of_every_broken_file_between_good_ones_reports_each_and_loses_none(tmp_path: Path):
    # Given every broken file of the corpus, each after a good one, checked in one run
    args: list[str] = []
    for i, case in enumerate(MAPPING_CASES):
        good = NEIGHBOURS[i % len(NEIGHBOURS)]
        (tmp_path / case.name).mkdir()
        (tmp_path / case.name / "shopify.yaml").write_text(case.text(), encoding="utf-8")
        shutil.copy(SHIPPED_DIR / good, tmp_path / case.name / good)
        args += [f"{case.name}/{good}", f"{case.name}/shopify.yaml"]
    result = subprocess.run(
        [SYNCHUB, "mappings", "check", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"COLUMNS": "200", "PATH": ""},
    )
    out = result.stdout + result.stderr
    # Then the run fails, prints each mistake as the corpus says, and checks every good file
    assert result.returncode == 1, out
    for i, case in enumerate(MAPPING_CASES):
        for line in case.issues:
            assert f"{case.name}/{line}" in out, out
        assert f"ok  {case.name}/{NEIGHBOURS[i % len(NEIGHBOURS)]}" in out, out


def test_the_corpus_table_in_the_docs_is_current():
    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    section = doc.split("<!-- mapping-table:start -->\n")[1].split("\n<!-- mapping-table:end -->")[0]
    assert section == mapping_table(), (
        "regenerate the table: python -c 'from tests.badinput.mappings import mapping_table; print(mapping_table())'"
    )
