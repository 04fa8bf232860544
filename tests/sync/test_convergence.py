"""Stateful property test: random edits in the hub and two spokes, with duplicate and reordered
webhook deliveries and partial syncs in any order, always converge.

After the last step everything is drained to quiescence; then:
* every system holds exactly the golden record's mapped values;
* the golden record is what the rules dictate: `union` tags hold every tag anyone added, `newest`
  fields the value of the latest edit (by the time its system reported it), `hub` fields one of the
  values someone typed;
* one golden record and one native record per system per person: no duplicates;
* zero writes caused purely by echoes (a write that changes nothing in the target), and a further
  drain moves nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from connectors.memory import MemoryConnector
from core.store.db import Store
from core.sync.pipeline import Pipeline
from core.sync.systems import System, Systems
from mappings.loader import load_mapping
from tests.sync.helpers import MAPPINGS

SYSTEMS = ["crm", "shop_a", "shop_b"]
PEOPLE = ["anna@example.pl", "jan@example.pl", "ola@example.pl"]
NAMES = ["Anna", "Jan", "Ola", "Zofia", "Łukasz", "Żaneta"]
CITIES = ["Kraków", "Gdańsk", "Poznań", "Łódź"]
TAGS = ["vip", "web", "store", "newsletter", "b2b"]

# native field names per system kind
FIELDS = {
    "crm": {"first_name": "first_name", "city": "city", "tags": "tags", "note": "note", "email": "email"},
    "shop": {"first_name": "firstName", "city": "address.city", "tags": "tags", "note": "note", "email": "email"},
}


def kind(system: str) -> str:
    return "crm" if system == "crm" else "shop"


def native_fields(system: str, **values: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field, value in values.items():
        name = FIELDS[kind(system)][field]
        if "." in name:
            head, tail = name.split(".")
            out.setdefault(head, {})[tail] = value
        else:
            out[name] = value
    return out


def read_native(system: str, record: dict[str, Any], field: str) -> Any:
    name = FIELDS[kind(system)][field]
    if "." in name:
        head, tail = name.split(".")
        return (record.get(head) or {}).get(tail)
    return record.get(name)


class Convergence(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="synchub-conv-"))
        self.store = Store(f"sqlite:///{self.tmp / 'state.db'}")
        self.conn = {name: MemoryConnector(name) for name in SYSTEMS}
        shop = load_mapping(MAPPINGS / "shop.yaml")
        self.systems = Systems(
            hub=System(
                "crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "both"}, self.conn["crm"]
            ),
            spokes={name: System(name, "shopify", shop, {"customer": "both"}, self.conn[name]) for name in SYSTEMS[1:]},
        )
        self.pipeline = Pipeline(self.store, self.systems)
        # the model: native ids, edits not yet read, and every edit with the time its system reported it
        self.native: dict[tuple[str, str], str] = {}
        self.unread: dict[tuple[str, str], dict[str, Any]] = {}
        self.edits: dict[tuple[str, str], list[tuple[datetime, Any]]] = {}
        self.tags_added: dict[str, set[str]] = {p: set() for p in PEOPLE}
        self.typed: dict[tuple[str, str], set[Any]] = {}
        self.snapshots: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.events = 0
        self.read_upto: dict[tuple[str, str], int] = {}  # snapshots already seen by the pipeline

    # --- model bookkeeping -----------------------------------------------------------------------

    def _record(self, system: str, person: str) -> dict[str, Any] | None:
        nid = self.native.get((system, person))
        return None if nid is None else self.conn[system].system.get("customer", nid)

    def _find_synced(self) -> None:
        """Learn native ids of records synchub created in a system (by email)."""
        for system in SYSTEMS:
            for nid, rec in self.conn[system].system.live("customer").items():
                email = read_native(system, rec, "email")
                if email in PEOPLE:
                    self.native.setdefault((system, email), nid)

    def _mark_read(self, system: str, person: str) -> None:
        rec = self._record(system, person)
        pending = self.unread.pop((system, person), {})
        if rec is None:
            return
        self.read_upto[(system, person)] = len(self.snapshots.get((system, person), []))
        ts = datetime.fromisoformat(rec["updated_at"])
        for field, value in pending.items():
            self.edits.setdefault((person, field), []).append((ts, value))

    def _mark_system_read(self, system: str) -> None:
        for person in PEOPLE:
            self._mark_read(system, person)

    # --- rules -----------------------------------------------------------------------------------

    @initialize(
        person=st.sampled_from(PEOPLE),
        system=st.sampled_from(SYSTEMS),
        name=st.sampled_from(NAMES),
        city=st.sampled_from(CITIES),
    )
    def first_customer(self, person: str, system: str, name: str, city: str) -> None:
        self.create(person, system, name, city)

    @rule(
        person=st.sampled_from(PEOPLE),
        system=st.sampled_from(SYSTEMS),
        name=st.sampled_from(NAMES),
        city=st.sampled_from(CITIES),
    )
    def create(self, person: str, system: str, name: str, city: str) -> None:
        self._find_synced()
        if (system, person) in self.native:
            return
        nid = self.conn[system].system.put(
            "customer", native_fields(system, first_name=name, city=city, email=person, tags=[])
        )
        self.native[(system, person)] = nid
        self.unread[(system, person)] = {"city": city}
        self.typed.setdefault((person, "first_name"), set()).add(name)
        self._snapshot(system, person)

    @rule(
        person=st.sampled_from(PEOPLE),
        system=st.sampled_from(SYSTEMS),
        field=st.sampled_from(["first_name", "city", "note"]),
        value=st.sampled_from(NAMES + CITIES),
    )
    def edit(self, person: str, system: str, field: str, value: str) -> None:
        self._find_synced()
        nid = self.native.get((system, person))
        rec = self._record(system, person)
        if nid is None or rec is None or read_native(system, rec, field) == value:
            return  # typing the value a field already holds is no change: no system reports it
        self.conn[system].system.edit("customer", nid, **native_fields(system, **{field: value}))
        if field in ("city", "note"):
            self.unread.setdefault((system, person), {})[field] = value
        self.typed.setdefault((person, field), set()).add(value)
        self._snapshot(system, person)

    @rule(person=st.sampled_from(PEOPLE), system=st.sampled_from(SYSTEMS), tag=st.sampled_from(TAGS))
    def add_tag(self, person: str, system: str, tag: str) -> None:
        self._find_synced()
        rec = self._record(system, person)
        if rec is None:
            return
        tags = list(rec.get("tags") or [])
        if tag not in tags:
            self.conn[system].system.edit("customer", self.native[(system, person)], tags=[*tags, tag])
            self.tags_added[person].add(tag)
            self._snapshot(system, person)

    def _snapshot(self, system: str, person: str) -> None:
        rec = self._record(system, person)
        if rec is not None:
            self.snapshots.setdefault((system, person), []).append(dict(rec))

    @rule(person=st.sampled_from(PEOPLE), system=st.sampled_from(SYSTEMS[1:]), copies=st.integers(1, 3))
    def webhook(self, person: str, system: str, copies: int) -> None:
        """A shop sends the current record as a webhook, maybe several times."""
        rec = self._record(system, person)
        if rec is None:
            return
        event_id = f"{rec['id']}@{rec['updated_at']}"
        accepted = [self.pipeline.accept(system, "customer", event_id, dict(rec)) for _ in range(copies)]
        assert sum(a is not None for a in accepted) <= 1  # a redelivery is not a second event
        self.pipeline.process_inbox()
        self._mark_read(system, person)

    @precondition(lambda self: any(n > 1 for n in self.read_upto.values()))
    @rule(data=st.data())
    def late_webhook(self, data: st.DataObject) -> None:
        """An older snapshot arrives after a newer one was delivered (reordering)."""
        keys = sorted(k for k, n in self.read_upto.items() if n > 1 and k[0] != "crm")
        if not keys:
            return
        system, person = data.draw(st.sampled_from(keys))
        old = data.draw(st.sampled_from(self.snapshots[(system, person)][: self.read_upto[(system, person)] - 1]))
        self.pipeline.accept(system, "customer", f"late-{self.events}", dict(old))
        self.events += 1
        self.pipeline.process_inbox()

    @rule(system=st.sampled_from(SYSTEMS))
    def poll(self, system: str) -> None:
        self.pipeline.poll(system, "customer")
        self._mark_system_read(system)

    @rule(system=st.sampled_from(SYSTEMS))
    def flush(self, system: str) -> None:
        if self.pipeline._due_entities(system):  # read-before-write: the pipeline reads, then writes
            self._mark_system_read(system)
        self.pipeline.flush(system)

    # --- the end state ---------------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self._check()
        finally:
            self.store.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _check(self) -> None:
        for system in SYSTEMS:  # the drain polls every system before it writes any
            self._mark_system_read(system)
        self.pipeline.drain()
        self._find_synced()
        assert self.pipeline.drain() == 0, "a second drain moved something: not quiescent"
        people = {p for (_, p) in self.native}
        from sqlalchemy import select

        from core.store.schema import golden

        with self.store.begin() as conn:
            goldens = {r.data["emails"][0]: r.data for r in conn.execute(select(golden)).fetchall()}
        assert set(goldens) == people, "one golden record per person"
        for system in SYSTEMS:
            live = self.conn[system].system.live("customer")
            emails = [read_native(system, r, "email") for r in live.values()]
            assert sorted(emails) == sorted(people), f"{system}: duplicates or missing: {emails}"
            assert self.conn[system].noop_writes == 0, f"{system} got writes that changed nothing (echoes)"
            mapped = self.systems.get(system).entity("customer")
            for rec in live.values():
                canonical = mapped.to_canonical(rec)
                g = goldens[canonical["emails"][0]]
                for unit in ("first_name", "note"):
                    assert canonical.get(unit) == g.get(unit), (system, unit, canonical, g)
                assert canonical.get("addresses", {}).get("default", {}).get("city") == g.get("addresses", {}).get(
                    "default", {}
                ).get("city")
                assert sorted(canonical.get("tags") or []) == sorted(g.get("tags") or [])
        for person, g in goldens.items():
            assert set(g.get("tags") or []) == self.tags_added[person], "union keeps every added tag"
            if g.get("first_name") is not None:
                assert g["first_name"] in self.typed[(person, "first_name")]
            for field, got in (
                ("city", (g.get("addresses") or {}).get("default", {}).get("city")),
                ("note", g.get("note")),
            ):
                edits = self.edits.get((person, field), [])
                if not edits:
                    continue
                latest = max(ts for ts, _ in edits)
                winners = {v for ts, v in edits if ts == latest}
                assert got in winners, f"newest rule: {field} is {got!r}, the latest edit said {winners}"


Convergence.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestConvergence = Convergence.TestCase
