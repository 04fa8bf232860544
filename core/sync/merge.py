"""The 3-way merge of one field: pure functions, no store, so every rule is easy to test.

Inputs per field (a *unit*: a canonical path such as ``addresses.default.city``, or ``lines`` for
a whole array): the golden value, the incoming value from system S, and the base — the value S had
when it was last in step. Only a field changed on *both* sides since the base is a conflict; then
the field's ``owner`` rule picks the winner:

=========  ================================================================================
hub        the CRM's value wins (the incoming one, when the CRM is the one sending it)
<system>   that system's value wins (e.g. ``tryton`` for stock, ``inpost`` for shipment status)
newest     the later source timestamp wins; ties go to the hub, then the lower system name
fill       the incoming value only fills an empty golden value
union      set merge: both sides' additions, both sides' removals (tags, channels)
manual     the golden value stays and the conflict is parked for a person
=========  ================================================================================

Two cases are never conflicts, whatever the owner says: a system's *first* record of a golden one
(no base yet) that lacks a value the golden record has — the system never had it, it did not clear
it, so the golden value stays and is sent there; and the bookkeeping times ``created_at`` (the
earliest any system knows) and ``updated_at`` (the latest), which every system keeps for itself.

Consent is conservative whatever the owner says: a withdrawal (``granted: false``) wins over any
opt-in that is not newer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from mappings.paths import MISSING


def is_empty(value: Any) -> bool:
    return value is MISSING or value is None or value == "" or value == [] or value == {}


class Side(NamedTuple):
    """A value with who said it and when.

    Side and Decision are named tuples, not frozen dataclasses: three of them per field of every
    ingest, and a frozen dataclass's ``__init__`` (``object.__setattr__`` per field) was 3 % of a
    worker's CPU in bench/throughput."""

    value: Any
    system: str
    at: datetime | None
    is_hub: bool = False


class Decision(NamedTuple):
    """What the merge decided for one unit."""

    value: Any
    take_incoming: bool
    conflict: bool
    rule: str
    parked: bool = False


def _newest(golden: Side, incoming: Side) -> bool:
    """True if incoming is newer; deterministic on ties (hub first, then system name)."""
    if golden.at is not None and incoming.at is not None and golden.at != incoming.at:
        return incoming.at > golden.at
    if golden.at is None and incoming.at is not None:
        return True
    if incoming.at is None and golden.at is not None:
        return False
    if golden.is_hub != incoming.is_hub:
        return incoming.is_hub
    return incoming.system < golden.system


def _union(golden: Any, incoming: Any, base: Any) -> list[Any]:
    """3-way set merge: keep golden minus what S removed, plus what S added (order kept)."""
    g = list(golden) if isinstance(golden, list) else []
    s = list(incoming) if isinstance(incoming, list) else []
    b = list(base) if isinstance(base, list) else []
    out = [x for x in g if not (x in b and x not in s)]
    out.extend(x for x in s if x not in b and x not in out)
    return out


def decide(unit: str, rule: str, golden: Side, incoming: Side, base: Any, owner_kind_of_incoming: str) -> Decision:
    """Merge one unit that system S changed since its base. ``base`` may be MISSING (S never synced it)."""
    g, v = golden.value, incoming.value
    changed_on_hub = (base is MISSING and not is_empty(g)) or (base is not MISSING and g != base)
    if g == v:
        return Decision(v, True, False, "change")
    if v is None and not is_empty(g) and unit.startswith("consents.") and unit.endswith(".granted"):
        # "unknown" says nothing about a consent someone gave or withdrew: a system that can only say
        # "withdrawn" (the CRM's HasOptedOutOfEmail, false for everyone else) holds what we wrote to it
        # in fewer words. Taking its unknown would erase the consent and write it back for ever.
        return Decision(g, False, False, "agree")
    if unit in BOOKKEEPING:
        return _bookkeeping(unit, g, v)
    agreed = _agreeing_rows(g, v)
    if agreed is not None:
        if agreed == g:  # the incoming rows say nothing the golden ones do not: no change at all
            return Decision(g, False, False, "agree")
        return Decision(agreed, True, False, "change")
    if base is MISSING and is_empty(v) and not is_empty(g):
        return Decision(g, False, False, "first-link")
    if not changed_on_hub:
        if rule == "newest" and golden.at is not None and incoming.at is not None and golden.at > incoming.at:
            # The golden value was set or re-confirmed by another system after S's edit: under `newest`
            # that later statement wins even though S's base still equals it.
            return Decision(g, False, True, "newest")
        return Decision(v, True, False, "change")
    consent = _consent(unit, golden, incoming)
    if consent is not None:
        return consent
    if rule == "hub":
        win = incoming.is_hub
    elif rule == "newest":
        win = _newest(golden, incoming)
    elif rule == "fill":  # the system only fills gaps: its other value is expected, not a conflict
        return Decision(v, True, False, "fill") if is_empty(g) else Decision(g, False, False, "fill")
    elif rule == "progress":
        forward = _progress(g, v)
        if forward is not None:
            return Decision(v if forward else g, forward, False, "progress")
        win = _newest(golden, incoming)
    elif rule == "union":
        return Decision(_union(g, v, base), True, True, "union")
    elif rule == "manual":
        return Decision(g, False, True, "manual", parked=True)
    else:  # a named system owns the field
        win = owner_kind_of_incoming == rule
    return Decision(v if win else g, win, True, rule)


BOOKKEEPING = frozenset({"created_at", "updated_at"})

# An order's stages in the order they happen (core.model.OrderStatus); cancelled and returned end it.
STAGES = {"pending": 0, "confirmed": 1, "processing": 2, "shipped": 3, "ready_for_pickup": 4, "completed": 5}
ENDS = frozenset({"cancelled", "returned"})


def _progress(golden: Any, incoming: Any) -> bool | None:
    """Rule ``progress``: True if the incoming status is further along than the golden one, False if
    it is a stale statement of an earlier (or the same) stage; None when either is not a stage."""
    if golden in ENDS:
        return False  # an order that ended stays ended
    if incoming in ENDS:
        return True
    if golden in STAGES and incoming in STAGES:
        return bool(STAGES[incoming] > STAGES[golden])
    if is_empty(golden) and incoming in STAGES:
        return True
    return None


def _agreeing_rows(g: Any, v: Any) -> list[dict[str, Any]] | None:
    """Two arrays of objects (order lines) that say the same thing, each side knowing fields the other
    does not (the CRM has no discount, the shop's webhook no line total): their row-by-row union.
    None when they disagree on any value both hold, or do not line up."""
    if not (isinstance(g, list) and isinstance(v, list)) or len(g) != len(v) or not g:
        return None
    out = []
    for a, b in zip(g, v, strict=True):
        if not (isinstance(a, dict) and isinstance(b, dict)):
            return None
        if any(a[k] != b[k] for k in a.keys() & b.keys() if not is_empty(a[k]) and not is_empty(b[k])):
            return None
        out.append({**a, **{k: x for k, x in b.items() if not is_empty(x)}})
    return out


def _bookkeeping(unit: str, g: Any, v: Any) -> Decision:
    """created_at: the earliest known; updated_at: the latest. Values are aware datetimes or ISO text."""
    if is_empty(g):
        return Decision(v, True, False, "timestamp")
    if is_empty(v):
        return Decision(g, False, False, "timestamp")
    try:
        gt, vt = _instant(g), _instant(v)
    except (TypeError, ValueError):
        return Decision(v, True, False, "timestamp")
    take = vt < gt if unit == "created_at" else vt > gt
    return Decision(v if take else g, take, False, "timestamp")


def _instant(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def _consent(unit: str, golden: Side, incoming: Side) -> Decision | None:
    """Withdrawals win over any opt-in that is not newer (GDPR: when in doubt, do not contact)."""
    if not (unit.startswith("consents.") and unit.endswith(".granted")):
        return None
    g, v = golden.value, incoming.value
    if v is False and g is True:
        newer_opt_in = golden.at is not None and incoming.at is not None and golden.at > incoming.at
        return Decision(g if newer_opt_in else v, not newer_opt_in, True, "consent")
    if v is True and g is False:
        newer = golden.at is not None and incoming.at is not None and incoming.at > golden.at
        return Decision(v if newer else g, newer, True, "consent")
    return None
