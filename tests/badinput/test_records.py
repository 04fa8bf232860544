"""Bad records: each gets its exact outcome, and the records around it in the same page are not lost."""

from __future__ import annotations

import pytest
from sqlalchemy import func, inspect, select

from core.store.schema import dead_letters, golden
from tests.badinput.corpus import RECORD_CASES, RecordCase
from tests.sync.helpers import deployment


@pytest.mark.parametrize("case", RECORD_CASES, ids=lambda c: c.name)
def test_bad_record(case: RecordCase, store):
    d = deployment(store)
    # Given the bad record between two good ones, all three in one page of the shop's changes
    d.shop.system.put("customer", {"firstName": "Przed", "email": "przed@example.pl"})
    record = dict(case.record)
    bad_id = d.shop.system.put("customer", record)
    if "id" in case.record and case.record["id"] is None:
        d.shop.system.table("customer")[bad_id].data["id"] = None
    d.shop.system.put("customer", {"firstName": "Po", "email": "po@example.pl"})
    # When the shop is polled and everything is flushed
    d.pipeline.drain()
    crm = list(d.crm.system.live("customer").values())
    # Then the neighbours arrived
    names = [r.get("first_name") for r in crm]
    assert "Przed" in names and "Po" in names
    with store.begin() as conn:
        errors = [r.error for r in conn.execute(select(dead_letters.c.error, dead_letters.c.payload))]
        payloads = [r.payload for r in conn.execute(select(dead_letters.c.payload))]
        assert "golden" in inspect(conn).get_table_names()  # still there after any injection attempt
        goldens = conn.execute(select(func.count()).select_from(golden)).scalar()
    if case.outcome.startswith("dead: "):
        # the bad one is a dead letter with the precise reason, its payload kept for replay
        assert len(errors) == 1, errors
        assert case.outcome.removeprefix("dead: ") in errors[0]
        assert payloads[0].get("email") == case.record.get("email")
        assert len(crm) == 2 and goldens == 2
    else:
        assert errors == []
        assert len(crm) == 3 and goldens == 3
        expected = case.expect if case.expect is not None else case.record["firstName"]
        assert expected in [r.get(case.field) for r in crm]


def test_the_corpus_table_in_the_docs_is_current():
    from pathlib import Path

    from tests.badinput.corpus import record_table

    doc = (Path(__file__).resolve().parents[2] / "docs" / "reliability.md").read_text()
    section = doc.split("<!-- record-table:start -->\n")[1].split("\n<!-- record-table:end -->")[0]
    assert section == record_table(), (
        "regenerate the table: python -c 'from tests.badinput.corpus import record_table; print(record_table())'"
    )
