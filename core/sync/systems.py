"""The systems a deployment syncs: the hub (the CRM) and its spokes, each with its mapping.

Names are instance names (``shop_pl``); ``kind`` is the connector kind (``shopify``), which is
what mapping files name as a field's owner.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from core.connector import Connector
from core.errors import ConfigError
from mappings.compiler import CompiledEntity, CompiledMapping
from mappings.paths import Path, getter, parse_path

Flow = Literal["both", "in", "out"]


@dataclass
class System:
    name: str
    kind: str
    mapping: CompiledMapping
    flows: dict[str, Flow]
    connector: Connector | None = None
    is_hub: bool = False
    _units: dict[tuple[str, str], list[tuple[str, Path]]] = field(default_factory=dict)
    _readers: dict[tuple[str, str], list[tuple[str, Callable[[Any], Any]]]] = field(default_factory=dict)

    def entity(self, entity: str) -> CompiledEntity:
        return self.mapping.entity(entity)

    def reads(self, entity: str) -> bool:
        """Changes of ``entity`` flow from this system into the hub."""
        return self.flows.get(entity) in ("both", "in")

    def receives(self, entity: str) -> bool:
        """Changes of ``entity`` flow from the hub out to this system."""
        return self.flows.get(entity) in ("both", "out")

    def units(self, entity: str, direction: str) -> list[tuple[str, Path]]:
        """The merge units this system's mapping covers in ``direction``, parsed once."""
        key = (entity, direction)
        if key not in self._units:
            seen: dict[str, Path] = {}
            for f in self.entity(entity).fields_for(direction):
                unit = f.merge_unit
                if unit is not None and unit not in seen:
                    seen[unit] = parse_path(unit)
            self._units[key] = list(seen.items())
        return self._units[key]

    def readers(self, entity: str, direction: str) -> list[tuple[str, Callable[[Any], Any]]]:
        """``units`` with each unit's value read by a compiled getter (mappings.paths.getter)."""
        key = (entity, direction)
        if key not in self._readers:
            self._readers[key] = [(unit, getter(path)) for unit, path in self.units(entity, direction)]
        return self._readers[key]


@dataclass
class Systems:
    hub: System
    spokes: dict[str, System]

    def __post_init__(self) -> None:
        self.hub.is_hub = True
        if self.hub.name in self.spokes:
            raise ConfigError(f"system name {self.hub.name!r} is used by the hub and a spoke")

    def get(self, name: str) -> System:
        if name == self.hub.name:
            return self.hub
        try:
            return self.spokes[name]
        except KeyError:
            raise ConfigError(f"unknown system {name!r}") from None

    def all(self) -> list[System]:
        return [self.hub, *self.spokes.values()]

    def hub_holds(self, entity: str) -> bool:
        """Is the CRM the master of ``entity``? (Stock, typically, is not: the ERP is.)"""
        return entity in self.hub.mapping.entities and self.hub.receives(entity)
