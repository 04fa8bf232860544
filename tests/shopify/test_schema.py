"""Every document the connector can send validates against Shopify's own published schema of the
pinned version, and the emulator serves nothing that schema does not have, with the same types."""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_schema,
    parse,
    validate,
)

from connectors.shopify import documents
from connectors.shopify.connector import DEFAULT_VERSION
from sandbox.shopify.emulator import SCHEMA_FILE
from sandbox.shopify.subset import load_official, subset_sdl

FIXTURE = Path(__file__).parent / "fixtures" / "admin_2026-10.json.gz"


@pytest.fixture(scope="module")
def official() -> GraphQLSchema:
    return load_official(FIXTURE)


@pytest.fixture(scope="module")
def emulated() -> GraphQLSchema:
    return build_schema(SCHEMA_FILE.read_text(encoding="utf-8"))


def test_the_pinned_version_is_the_schema_we_check_against():
    assert DEFAULT_VERSION == "2026-10" and FIXTURE.name == f"admin_{DEFAULT_VERSION}.json.gz"


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_document_validates_against_shopify_schema(official: GraphQLSchema, name: str):
    errors = validate(official, parse(documents.ALL[name]))
    assert errors == [], [e.message for e in errors]


def test_the_check_catches_a_misspelt_field(official: GraphQLSchema):
    errors = validate(official, parse("{ customers(first: 1) { nodes { firstNam } } }"))
    assert errors and "firstName" in errors[0].message


def test_only_six_fields_needed_their_deprecation_cleared():
    import gzip
    import json

    from graphql import build_client_schema, validate_schema

    raw = json.loads(gzip.decompress(FIXTURE.read_bytes()))["data"]
    assert len(validate_schema(build_client_schema(raw))) == 6


def test_emulator_schema_is_generated_from_the_current_documents(official: GraphQLSchema):
    fresh = subset_sdl(official, documents.ALL.values(), FIXTURE.name)
    assert SCHEMA_FILE.read_text(encoding="utf-8") == fresh, "run: python -m sandbox.shopify.subset <fixture>"


def test_every_emulated_type_and_field_exists_in_shopify_schema_with_the_same_type(
    official: GraphQLSchema, emulated: GraphQLSchema
):
    checked = 0
    for name, t in emulated.type_map.items():
        if name.startswith("__"):
            continue
        real = official.get_type(name)
        assert real is not None, f"{name} is not in Shopify's schema"
        assert type(real) is type(t), f"{name}: {type(t).__name__} here, {type(real).__name__} at Shopify"
        if isinstance(t, GraphQLObjectType | GraphQLInterfaceType):
            for fname, field in t.fields.items():
                assert fname in real.fields, f"{name}.{fname} is not in Shopify's schema"  # type: ignore[union-attr]
                rf = real.fields[fname]  # type: ignore[union-attr]
                assert str(field.type) == str(rf.type), f"{name}.{fname}: {field.type} vs {rf.type}"
                assert {a: str(x.type) for a, x in field.args.items()} == {a: str(x.type) for a, x in rf.args.items()}
                checked += 1
        elif isinstance(t, GraphQLInputObjectType):
            assert {f: str(x.type) for f, x in t.fields.items()} == {
                f: str(x.type)
                for f, x in real.fields.items()  # type: ignore[union-attr]
            }
        elif isinstance(t, GraphQLEnumType):
            assert set(t.values) == set(real.values), name  # type: ignore[union-attr]
    assert checked > 100


@pytest.mark.parametrize("name", sorted(documents.ALL))
def test_emulator_accepts_every_document(emulated: GraphQLSchema, name: str):
    assert validate(emulated, parse(documents.ALL[name])) == []
