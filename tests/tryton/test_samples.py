"""mappings/tryton.yaml reads what the connector really hands over: the samples under
mappings/samples/tryton-*.json were taken from a real Tryton (python -m tests.tryton.samples)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mappings.loader import load_mapping

ROOT = Path(__file__).resolve().parents[2]
MAPPING = load_mapping(ROOT / "mappings" / "tryton.yaml")
SAMPLED = ["customer", "product", "stock_level", "touchpoint", "complaint"]


def sample(entity: str) -> dict[str, object]:
    path = ROOT / "mappings" / "samples" / f"tryton-{entity.replace('_', '-')}.json"
    return dict(json.loads(path.read_text(encoding="utf-8")))


@pytest.mark.parametrize("entity", SAMPLED)
def test_every_field_the_mapping_reads_is_in_the_real_record(entity: str):
    record = sample(entity)
    compiled = MAPPING.entity(entity)
    missing = sorted(
        {
            f.native.split(".")[0].split("[")[0]
            for f in compiled.fields
            if f.native and f.direction in ("in", "both") and f.native.split(".")[0].split("[")[0] not in record
        }
    )
    assert not missing, f"{entity}: the mapping reads {missing}, which the connector does not deliver"
    assert compiled.native_id(record) == str(record["id"])
    assert compiled.source_timestamp(record) is not None


@pytest.mark.parametrize("entity", SAMPLED)
def test_the_real_record_maps_with_only_cross_references_left_to_the_sync_core(entity: str):
    out, errors = MAPPING.entity(entity).map(sample(entity), "in", None)
    assert [e for e in errors if "cross-reference" not in str(e)] == []
    assert out  # something canonical came out


def test_the_real_party_maps_to_the_customer_a_person_would_expect():
    out, _ = MAPPING.entity("customer").map(sample("customer"), "in", None)
    assert (out["first_name"], out["last_name"]) == ("Małgorzata", "Wiśniewska")
    assert out["emails"] == ["malgorzata.wisniewska@example.pl"]
    assert out["phones"] == ["+48601234567"]
    assert out["addresses"]["default"]["country"] == "PL"
