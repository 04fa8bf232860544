"""The mapping file's schema, as pydantic models: the one source of truth for validation and for
the JSON Schema editors use (``synchub mappings schema``).

These models check *shape* (keys, types, allowed words). Meaning — does a canonical path exist,
is a transform known, is a ``both`` field reversible — is checked by the loader, which has the
registry and the canonical model at hand and can point at the exact column.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RULE_WORDS = ("hub", "newest", "fill", "progress", "union", "manual")
"""Conflict rules that are not a system name. See docs/mapping-files.md."""

KNOWN_SYSTEMS = (
    "salesforce",
    "shopify",
    "woocommerce",
    "prestashop",
    "tryton",
    "pos",
    "inpost",
    "allegro",
    "amazon",
    "mailchimp",
    "klaviyo",
    "memory",
)
"""Connector kinds a field may name as its owner. A new connector adds its kind here."""

StepItem = str | dict[str, Any]
Pipeline = str | list[StepItem]

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


class FieldSpec(BaseModel):
    """One mapped field. Defaults: ``direction: both``, ``owner: hub``."""

    model_config = _STRICT

    canonical: str | None = Field(None, description="Path in the canonical model, e.g. addresses.shipping.city")
    native: str | None = Field(None, description="Path in the native record, e.g. lineItems.nodes[].sku")
    direction: Literal["both", "in", "out"] = Field(
        "both", description="both, in (native → canonical only) or out (canonical → native only)"
    )
    transform: Pipeline | None = Field(
        None, description='Pipeline applied on the way in: "strip | lower" or a list of steps'
    )
    out_transform: Pipeline | None = Field(
        None, description="Pipeline for the way out; required when `transform` is not invertible"
    )
    owner: str = Field("hub", description="Who wins a conflict: hub, a system name, newest, fill, union or manual")
    required: bool = Field(False, description="Reject the record when this value is missing")
    description: str | None = None


class EntitySpec(BaseModel):
    """How one canonical entity appears in this system."""

    model_config = _STRICT

    native: str = Field(description="The system's object name (Contact, Customer, party.party)")
    id: str = Field(description="Native path of the system's id for the record")
    updated_at: str | None = Field(None, description="Native path of the last-modified timestamp")
    identity: list[str] = Field(
        default_factory=list,
        description=(
            "Canonical paths identifying the same real-world record, each on its own (emails, phones); "
            "join paths with + for a key made of several fields together (sku+location)"
        ),
    )
    on_delete: Literal["propagate", "archive", "ignore"] = "archive"
    description: str | None = None
    fields: list[FieldSpec] = Field(min_length=1)


class MappingSpec(BaseModel):
    """A whole mapping file: one system, its entities."""

    model_config = ConfigDict(extra="forbid", title="synchub mapping file")

    system: str = Field(description="Connector kind this mapping is for (shopify, salesforce, ...)")
    version: Literal[1] = 1
    description: str | None = None
    entities: dict[str, EntitySpec] = Field(min_length=1)


class CaseSpec(BaseModel):
    """One case of a mapping test file."""

    model_config = _STRICT

    name: str
    entity: str
    direction: Literal["in", "out"] = "in"
    input: dict[str, Any]
    expect: dict[str, Any] | None = None
    expect_errors: list[ExpectedError] | None = None


class ExpectedError(BaseModel):
    model_config = _STRICT

    field: str = Field(description="canonical path of the field that must fail")
    transform: str | None = Field(None, description="name of the failing transform, if any")
    message: str | None = Field(None, description="text the error message must contain")


class MappingTestSpec(BaseModel):
    """A ``<name>.test.yaml`` file: cases run against the mapping it names."""

    model_config = ConfigDict(extra="forbid", title="synchub mapping test file")

    mapping: str = Field(description="the mapping file, relative to this file")
    cases: list[CaseSpec] = Field(min_length=1)


CaseSpec.model_rebuild()
