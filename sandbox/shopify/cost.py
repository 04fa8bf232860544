"""Shopify's calculated query cost, as documented, and its leaky bucket.

https://shopify.dev/docs/apps/build/apis/graphql-admin/rate-limits — a scalar or enum costs 0, an
object 1, a connection 2 plus its page size times the cost of one node, a mutation 10; a query may
not request more than 1,000 points; the bucket refills at the plan's restore rate (Standard:
100 points/s). The bucket size (2,000 by default here, as in Shopify's example responses for that
rate) is a knob. The *actual* cost counts what came back: the objects in the answer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    get_named_type,
    is_leaf_type,
)
from graphql.utilities import value_from_ast_untyped

MAX_QUERY_COST = 1000
MUTATION_COST = 10


def requested_cost(schema: GraphQLSchema, document: Any, variables: dict[str, Any]) -> int:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    total = 0
    for op in document.definitions:
        if not isinstance(op, OperationDefinitionNode):
            continue
        if op.operation.value == "mutation":
            assert schema.mutation_type is not None
            total += MUTATION_COST * len(op.selection_set.selections)
            continue
        assert schema.query_type is not None
        total += _selection(schema, op.selection_set, schema.query_type, fragments, variables)
    return total


def _selection(
    schema: GraphQLSchema, sel: Any, parent: Any, fragments: dict[str, Any], variables: dict[str, Any]
) -> int:
    total = 0
    for node in sel.selections:
        if isinstance(node, InlineFragmentNode):
            cond = schema.get_type(node.type_condition.name.value) if node.type_condition else parent
            total = max(total, _selection(schema, node.selection_set, cond, fragments, variables))
        elif isinstance(node, FieldNode):
            name = node.name.value
            if name.startswith("__") or not hasattr(parent, "fields") or name not in parent.fields:
                continue
            named = get_named_type(parent.fields[name].type)
            if is_leaf_type(named):
                continue
            inner = _selection(schema, node.selection_set, named, fragments, variables) if node.selection_set else 0
            if named.name.endswith("Connection"):
                args = {a.name.value: value_from_ast_untyped(a.value, variables) for a in node.arguments or ()}
                size = int(args.get("first") or args.get("last") or 0)
                total += 2 + size * inner
            elif name == "pageInfo":
                continue
            else:
                total += 1 + inner
        else:  # fragment spread
            frag = fragments[node.name.value]
            total += _selection(
                schema, frag.selection_set, schema.get_type(frag.type_condition.name.value), fragments, variables
            )
    return total


def actual_cost(data: Any, mutations: int) -> int:
    """Objects in the answer (a connection: 2), plus 10 per mutation."""

    def walk(value: Any) -> int:
        if isinstance(value, list):
            return sum(walk(v) for v in value)
        if isinstance(value, dict):
            own = 2 if "pageInfo" in value or "nodes" in value or "edges" in value else 1
            return own + sum(walk(v) for k, v in value.items() if k != "pageInfo")
        return 0

    if mutations:
        return MUTATION_COST * mutations
    return sum(walk(v) for v in (data or {}).values())


class LeakyBucket:
    def __init__(self, maximum: float, restore_rate: float, now: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.restore_rate = restore_rate
        self.available = maximum
        self.now = now  # a test may replace it with a clock of its own, to refill by waiting alone
        self.at = now()
        self.lock = threading.Lock()

    def _refill(self) -> None:
        now = self.now()
        self.available = min(self.maximum, self.available + (now - self.at) * self.restore_rate)
        self.at = now

    def take(self, cost: float) -> bool:
        with self.lock:
            self._refill()
            if cost > self.available:
                return False
            self.available -= cost
            return True

    def refund(self, points: float) -> None:
        with self.lock:
            self._refill()
            self.available = min(self.maximum, self.available + points)

    def set(self, available: float) -> None:
        with self.lock:
            self.at = self.now()
            self.available = available

    def status(self) -> dict[str, float]:
        with self.lock:
            self._refill()
            return {
                "maximumAvailable": self.maximum,
                "currentlyAvailable": round(self.available, 1),
                "restoreRate": self.restore_rate,
            }
