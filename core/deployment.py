"""From a loaded Config to running parts: the systems with their mappings and connectors, the store,
the pipeline. One place, so the CLI, the workers, the API and the demo build a deployment the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import Config, SystemSettings
from core.connector import Connector, registry
from core.errors import ConfigError
from core.store.db import SqliteTuning, Store
from core.sync.pipeline import Pipeline, RetryPolicy
from core.sync.systems import Flow, System, Systems
from mappings.compiler import CompiledMapping
from mappings.loader import check_file


@dataclass
class SystemProblem:
    system: str
    message: str


@dataclass
class Checked:
    """What ``check_deployment`` found: problems per system (empty when the config is sound)."""

    problems: list[SystemProblem] = field(default_factory=list)
    mappings: dict[str, CompiledMapping] = field(default_factory=dict)


def check_deployment(config: Config) -> Checked:
    """Every mapping loads cleanly, covers the entities its system syncs, and every kind has a connector."""
    checked = Checked()
    for name, settings in config.systems().items():
        path = config.mapping_path(settings)
        mapping, issues = check_file(path)
        for issue in issues:
            where = f"{issue.file}:{issue.line}:{issue.column}"
            checked.problems.append(SystemProblem(name, f"{where}: {issue.message}"))
        if mapping is not None:
            checked.mappings[name] = mapping
            if mapping.system != settings.kind:
                checked.problems.append(
                    SystemProblem(name, f"{path} maps system {mapping.system!r}, but the kind is {settings.kind!r}")
                )
            for entity in _flows(settings, mapping):
                if entity not in mapping.entities:
                    checked.problems.append(
                        SystemProblem(name, f"entity {entity!r} is synced but {path} does not map it")
                    )
        try:
            registry.get(settings.connector_kind)
        except ConfigError as exc:
            checked.problems.append(SystemProblem(name, str(exc)))
    return checked


def _flows(settings: SystemSettings, mapping: CompiledMapping) -> dict[str, Flow]:
    """The hub syncs every entity its mapping holds unless ``entities`` says otherwise."""
    if settings.entities:
        return dict(settings.entities)
    return dict.fromkeys(mapping.entities, "both")


def build_connector(name: str, settings: SystemSettings) -> Connector:
    cls = registry.get(settings.connector_kind)
    return cls(name, settings.connector_settings())


def build_systems(config: Config, *, connectors: dict[str, Connector] | None = None) -> Systems:
    """Systems with compiled mappings and connectors; ``connectors`` supplies ready-made ones by name."""
    checked = check_deployment(config)
    if checked.problems:
        raise ConfigError("\n".join(f"{p.system}: {p.message}" for p in checked.problems))
    given = connectors or {}
    built: dict[str, System] = {}
    for name, settings in config.systems().items():
        mapping = checked.mappings[name]
        connector = given.get(name) or build_connector(name, settings)
        if settings.batch_size is not None:
            # a per-instance override of the kind's declared ClassVar default
            connector.__dict__["batch_size"] = settings.batch_size
        built[name] = System(name, settings.kind, mapping, _flows(settings, mapping), connector)
    hub = built.pop(config.hub_name)
    return Systems(hub=hub, spokes=built)


def retry_policy(config: Config) -> RetryPolicy:
    r = config.retry
    return RetryPolicy(max_attempts=r.max_attempts, base_delay=r.base_delay, max_delay=r.max_delay, max_age=r.max_age)


def build_pipeline(config: Config, *, connectors: dict[str, Connector] | None = None) -> Pipeline:
    """The pipeline over the configured store (migrated to the latest schema) and systems."""
    systems = build_systems(config, connectors=connectors)
    return Pipeline(open_store(config), systems, retry=retry_policy(config))


def open_store(config: Config) -> Store:
    """The configured state store, migrated, with the ``[state]`` tuning applied."""
    s = config.state
    return Store(s.url, sqlite=SqliteTuning(cache_mb=s.sqlite_cache_mb, mmap_mb=s.sqlite_mmap_mb))


def mapped_fields(mapping: Any, flows: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """entity → native top-level field → direction, for a connector's describe check (``check``)."""
    out: dict[str, dict[str, str]] = {}
    for entity in flows:
        if entity not in mapping.entities:
            continue
        fields = out.setdefault(entity, {})
        for f in mapping.entities[entity].fields:
            if f.native:
                top = f.native.split(".")[0].split("[")[0]
                previous = fields.get(top)
                fields[top] = f.direction if previous in (None, f.direction) else "both"
    return out


def check_hub(systems: Systems) -> None:
    """Describe what the hub's mapping names (Salesforce: every mapped object and field, and the
    external-id field) before any work starts: a field missing in the org fails the start with a
    ConfigError naming each one, instead of dead-lettering every record later. Raises whatever the
    connector raises; a transient error (the org unreachable now) is the caller's to judge."""
    hub = systems.hub
    if hub.connector is not None:
        hub.connector.check(mapped_fields(hub.mapping, dict(hub.flows)))
