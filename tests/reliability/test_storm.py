"""The fault storm at CI size (tests/reliability/storm.py says what it does; bench/storm.py runs any size).

The report is printed (``pytest -s``) and written to ``storm-report.md`` in the test's directory;
on failure the assertion message carries it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.reliability.storm import FAULT_KINDS, Storm, StormConfig

pytestmark = pytest.mark.slow


def test_a_fault_storm_loses_nothing_duplicates_nothing_and_converges(tmp_path: Path):
    if shutil.which("redis-server") is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is not installed (CI must have it: see .ci/run)")
        pytest.skip("!!! redis-server is not installed: the storm cannot run !!!")
    config = StormConfig(
        changes=int(os.environ.get("SYNCHUB_STORM_CHANGES", "2000")),
        seed=7,
        min_faults=20,
        stock_updates=int(os.environ.get("SYNCHUB_STORM_STOCK_UPDATES", "40")),
    )
    report = Storm(tmp_path, config).run()
    text = report.table()
    (tmp_path / "storm-report.md").write_text(text + "\n")
    print("\n" + text)
    detail = (
        f"\n{text}\nlost: {report.lost[:5]}\nduplicates: {report.duplicates[:5]}\nunconverged: {report.unconverged[:5]}"
    )
    assert report.changes >= config.changes, detail
    assert all(report.faults[kind] >= config.min_faults for kind in FAULT_KINDS), detail
    assert report.lost == [], detail
    assert report.duplicates == [], detail
    assert report.unconverged == [], detail
    # the ERP's stock moves were part of it, and the shop held every level before any reconciliation
    assert report.by_source["ERP stock updates"] == config.stock_updates, detail
    assert report.stock_levels > 0 and report.stock_wrong_before == 0, detail
