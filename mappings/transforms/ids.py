"""Identifiers: foreign ids through the cross-reference (``lookup``), Shopify global ids (``gid``)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from pydantic import AfterValidator

from core.model import ENTITIES
from mappings.errors import TransformError
from mappings.registry import Context, ExP, Fails, transform
from mappings.transforms._util import type_error


def _known_entity(entity: str) -> str:
    if entity not in ENTITIES:
        raise ValueError(f"unknown entity {entity!r} (one of: {', '.join(ENTITIES)})")
    return entity


Entity = Annotated[str, AfterValidator(_known_entity)]


def _id_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if type(value) is int:
        return str(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise type_error(value, "an id (text or integer)")


def lookup_out(value: Any, ctx: Context, entity: Entity) -> str:
    """Canonical id → this system's id for the same record, from the cross-reference."""
    resolver = ctx.resolver
    if resolver is None:
        raise TransformError("lookup needs the sync core's cross-reference (not available offline)")
    key = _id_text(value)
    native = resolver.native_id(entity, ctx.system, key)
    if native is None:
        raise TransformError(f"{entity} {key} has no id in {ctx.system} yet (sync it there first)")
    return native


@transform(
    examples=[
        ExP(
            "1001",
            "00000000-0000-4000-8000-000000001001",
            "customer",
            note="with a cross-reference that knows customer 1001",
        ),
        ExP(1001, "00000000-0000-4000-8000-000000001001", entity="customer"),
        Fails("unknown-7", "customer", note="the cross-reference has no such customer"),
        Fails([1001], "customer"),
    ],
    inverse=lookup_out,
    context=True,
)
def lookup(value: Any, ctx: Context, entity: Entity) -> str:
    """Translate this system's id of a *related* record (an order's customer, a line's product)
    into the canonical id, through the sync core's cross-reference table.

    ``entity`` is the canonical entity the id belongs to (``customer``, ``product``, ``order``…).
    An id the cross-reference does not know fails — the related record has not been synced yet,
    and the record is retried later rather than linked to nothing. Offline (``synchub mappings
    preview`` without the sync core) every lookup fails with a message saying so. The way out
    translates the canonical id back into this system's id.
    """
    resolver = ctx.resolver
    if resolver is None:
        raise TransformError("lookup needs the sync core's cross-reference (not available offline)")
    key = _id_text(value)
    canonical = resolver.canonical_id(entity, ctx.system, key)
    if canonical is None:
        raise TransformError(f"no {entity} with id {key!r} is known in {ctx.system}")
    return canonical


_GID_TYPE = re.compile(r"[A-Z][A-Za-z0-9]*")


def _gid_type(name: str) -> str:
    if not _GID_TYPE.fullmatch(name):
        raise ValueError(f"{name!r} is not a Shopify object type such as 'Customer' or 'Order'")
    return name


GidType = Annotated[str, AfterValidator(_gid_type)]


def gid_out(value: Any, type: GidType) -> str:
    """Numeric id → ``gid://shopify/<type>/<id>``; a gid of the right type passes unchanged."""
    text = _id_text(value)
    if text.startswith("gid://"):
        text = _gid_id(text, type)
    if not text or "/" in text:
        raise TransformError(f"{text!r} is not a Shopify id")
    return f"gid://shopify/{type}/{text}"


@transform(
    examples=[
        ExP("gid://shopify/Customer/7414567371", "7414567371", "Customer"),
        ExP("gid://shopify/Order/5829101?from=admin", "5829101", type="Order"),
        Fails("gid://shopify/Order/5829101", "Customer", note="a gid of another type"),
        Fails("7414567371", "Customer", note="not a gid"),
        Fails("gid://shopify/Customer/", "Customer"),
    ],
    inverse=gid_out,
)
def gid(value: Any, type: GidType) -> str:
    """Take the id out of a Shopify global id: ``gid://shopify/Customer/123`` → ``123``.

    ``type`` is the Shopify object type the field must hold (``Customer``, ``Order``,
    ``ProductVariant``); a gid of another type fails, catching a mapping that reads the wrong
    field. A ``?query`` suffix is ignored. The way out builds the gid from the id again.
    """
    return _gid_id(value, type)


def _gid_id(value: Any, type: str) -> str:
    if not isinstance(value, str):
        raise type_error(value, "a Shopify gid as text")
    prefix = f"gid://shopify/{type}/"
    if not value.startswith(prefix):
        raise TransformError(f"not a Shopify gid of a {type} (gid://shopify/{type}/<id>)")
    rest = value[len(prefix) :].split("?", 1)[0]
    if not rest or "/" in rest:
        raise TransformError(f"not a Shopify gid of a {type} (gid://shopify/{type}/<id>)")
    return rest
