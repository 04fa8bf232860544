"""`synchub trace`: one customer across every system, with each field's provenance."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from core.sync.trace import trace
from tests.sync.helpers import deployment

SYNCHUB = str(Path(sys.executable).with_name("synchub"))


def test_trace_explains_values_ids_and_conflicts(sqlite_store):
    # Given a customer who came from the shop, was edited in the CRM and in the shop at once
    d = deployment(sqlite_store)
    shop_id = d.shop.system.put("customer", {"firstName": "Anna", "email": "Anna@Example.PL", "phone": "600 100 200"})
    d.pipeline.drain()
    contact_id = next(iter(d.crm.system.live("customer")))
    d.crm.system.edit("customer", contact_id, first_name="Anna Maria")
    d.shop.system.edit("customer", shop_id, firstName="Ania")
    d.pipeline.drain()

    # When traced by phone in a local format
    (record,) = trace(sqlite_store, "customer", "600-100-200")
    # Then: both systems' ids, the value and where it came from, and the conflict with its rule
    assert record.native_ids == {"shop": shop_id, "crm": contact_id}
    first = next(f for f in record.fields if f.field == "first_name")
    assert (first.value, first.source_system, first.rule) == ("Anna Maria", "crm", "change")
    assert [(c["field"], c["rule"], c["outcome"]) for c in record.conflicts] == [("first_name", "hub", "golden")]

    # and the command line shows the same, found by email in another case
    url = sqlite_store.url
    result = subprocess.run(
        [SYNCHUB, "trace", "customer", "ANNA@example.pl", "--store", url],
        capture_output=True,
        text=True,
        timeout=60,
        env={"COLUMNS": "220", "PATH": ""},
    )
    assert result.returncode == 0, result.stderr
    for text in (record.canonical_id, shop_id, "Anna Maria", "first_name", "crm", "hub", "Ania"):
        assert text in result.stdout, text


def test_trace_of_an_unknown_key_exits_1(sqlite_store):
    result = subprocess.run(
        [SYNCHUB, "trace", "customer", "nobody@example.pl", "--store", sqlite_store.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "no customer matches" in result.stderr
