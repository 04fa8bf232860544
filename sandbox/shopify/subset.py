"""Cut the emulator's schema out of Shopify's published one: exactly the types and fields the
connector's documents use, each with Shopify's own type and arguments.

Run it when the connector's documents change (the schema test fails until you do)::

    python -m sandbox.shopify.subset tests/shopify/fixtures/admin_2026-10.json.gz > sandbox/shopify/schema.graphql

The emulator then serves a schema that is a strict subset of the real one by construction, and
tests/shopify/test_schema.py checks that claim type by type against the published schema.
"""

from __future__ import annotations

import copy
import gzip
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphql import (
    GraphQLArgument,
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    ast_from_value,
    build_client_schema,
    get_named_type,
    parse,
    print_ast,
    specified_scalar_types,
    validate_schema,
    visit,
)

OFFICIAL_ONLY_INTERFACES = True  # only Node is kept: the rest need fields the connector never reads


def load_official(path: Path) -> GraphQLSchema:
    """Shopify's introspection, made acceptable to graphql-core.

    graphql-core refuses the schema as shipped: six implementation fields are deprecated while the
    interface field they implement is not. Clear ``isDeprecated`` on exactly the fields
    ``validate_schema`` names (shared/specs/README.md), nothing else, and rebuild.
    """
    data = json.loads(gzip.decompress(path.read_bytes()))["data"]
    schema = build_client_schema(data)
    named: dict[str, set[str]] = {}
    for error in validate_schema(schema):
        m = re.search(r"implementation field (\w+)\.(\w+) must not be deprecated", error.message)
        if m is None:
            raise ValueError(f"unexpected schema error: {error.message}")
        named.setdefault(m[1], set()).add(m[2])
    data = copy.deepcopy(data)
    for t in data["__schema"]["types"]:
        for f in t.get("fields") or []:
            if f["name"] in named.get(t["name"], set()):
                f["isDeprecated"] = False
                f["deprecationReason"] = None
    fixed = build_client_schema(data)
    errors = validate_schema(fixed)
    if errors:
        raise ValueError(f"schema still invalid: {errors[0].message}")
    return fixed


def used_fields(schema: GraphQLSchema, documents: Iterable[str]) -> dict[str, set[str]]:
    """Type name → the fields the documents select on it."""
    used: dict[str, set[str]] = {}
    for doc in documents:
        info = TypeInfo(schema)

        class Collect(Visitor):
            def __init__(self, info: TypeInfo) -> None:
                super().__init__()
                self.info = info

            def enter_field(self, node: Any, *_: Any) -> None:
                parent = self.info.get_parent_type()
                if parent is not None and not node.name.value.startswith("__"):
                    used.setdefault(parent.name, set()).add(node.name.value)

        visit(parse(doc), TypeInfoVisitor(info, Collect(info)))
    return used


def subset_sdl(schema: GraphQLSchema, documents: Iterable[str], source: str) -> str:
    used = used_fields(schema, documents)
    node = schema.get_type("Node")
    for name in list(used):
        t = schema.get_type(name)
        if isinstance(t, GraphQLObjectType) and node in t.interfaces:
            used[name].add("id")
    used.setdefault("Node", set()).add("id")
    wanted: dict[str, Any] = {}

    def want(t: Any) -> None:
        t = get_named_type(t)
        if t.name in wanted or t.name in specified_scalar_types:
            return
        wanted[t.name] = t
        if isinstance(t, GraphQLInputObjectType):
            for f in t.fields.values():
                want(f.type)

    for name, fields in used.items():
        t = schema.get_type(name)
        wanted[name] = t
        for f in fields:
            fd = t.fields[f]  # type: ignore[union-attr]
            want(fd.type)
            for a in fd.args.values():
                want(a.type)
    for d in schema.directives:
        if d.name == "idempotent":
            for a in d.args.values():
                want(a.type)

    out = [
        f"# The subset of Shopify's Admin GraphQL API the emulator serves; generated from {source}",
        "# by sandbox/shopify/subset.py from the connector's documents. Do not edit by hand.",
        "",
        "schema { query: QueryRoot mutation: Mutation }",
        "",
        "directive @idempotent(key: String!) on FIELD",
        "",
    ]
    for name in sorted(wanted):
        t = wanted[name]
        if isinstance(t, GraphQLScalarType):
            out.append(f"scalar {name}\n")
        elif isinstance(t, GraphQLEnumType):
            values = "\n".join(f"  {v}" for v in t.values)
            out.append(f"enum {name} {{\n{values}\n}}\n")
        elif isinstance(t, GraphQLInputObjectType):
            one_of = " @oneOf" if getattr(t, "is_one_of", False) else ""
            lines = [f"  {f}: {fd.type}{_default(fd)}" for f, fd in t.fields.items()]
            out.append(f"input {name}{one_of} {{\n" + "\n".join(lines) + "\n}\n")
        elif isinstance(t, GraphQLInterfaceType | GraphQLObjectType):
            kind = "interface" if isinstance(t, GraphQLInterfaceType) else "type"
            impl = ""
            if isinstance(t, GraphQLObjectType) and node in t.interfaces:
                impl = " implements Node"
            lines = []
            for f in sorted(used[name]):
                fd = t.fields[f]
                args = ", ".join(f"{a}: {ad.type}{_default(ad)}" for a, ad in fd.args.items())
                lines.append(f"  {f}{f'({args})' if args else ''}: {fd.type}")
            out.append(f"{kind} {name}{impl} {{\n" + "\n".join(lines) + "\n}\n")
        else:
            raise TypeError(f"unsupported type kind for {name}")
    return "\n".join(out)


def _default(arg: Any) -> str:
    default = getattr(arg, "default_value", None)
    if default is None or default is getattr(GraphQLArgument, "Undefined", object()):
        return ""
    from graphql.pyutils import Undefined

    if default is Undefined:
        return ""
    value = ast_from_value(default, arg.type)
    return "" if value is None else f" = {print_ast(value)}"


def main() -> None:
    from connectors.shopify.documents import ALL

    path = Path(sys.argv[1])
    schema = load_official(path)
    sys.stdout.write(subset_sdl(schema, ALL.values(), path.name))


if __name__ == "__main__":
    main()
