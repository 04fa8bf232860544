"""The connector contract: what every system adapter provides, and nothing more.

A connector knows its system's transport, auth, pagination, rate limits and native semantics. It
knows nothing of canonical records, queues or the database: it reads native records since a
cursor, verifies and parses webhooks, and writes batches of native records, answering one result
per record (a native id, or a typed error that says transient vs permanent). Mapping, identity,
merge and retries are the core's and the workers' job.

Idempotency is part of the contract: ``write`` receives the canonical id with every record and
must use it so that a retried write never creates a second record (Salesforce external-id upsert,
a Shopify metafield, a Tryton code looked up before create, …).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

from core.errors import ConfigError, PermanentError, SynchubError

Op = Literal["upsert", "delete", "erase"]


@dataclass(frozen=True)
class NativeRecord:
    """One record as a system holds it. ``deleted`` marks a deletion seen by the read."""

    native_id: str
    data: dict[str, Any]
    deleted: bool = False
    updated_at: datetime | None = None


@dataclass(frozen=True)
class ChangePage:
    """One page of changes and the cursor to ask for the next; ``more`` says whether to ask now."""

    records: list[NativeRecord]
    cursor: str | None
    more: bool = False


@dataclass(frozen=True)
class InboundEvent:
    """A change announced by a webhook: deduplicated on ``event_id`` by the inbox."""

    event_id: str
    entity: str
    topic: str
    record: dict[str, Any]
    op: Op = "upsert"


@dataclass(frozen=True)
class WriteRequest:
    canonical_id: str
    native_id: str | None
    payload: dict[str, Any]
    op: Op = "upsert"


@dataclass(frozen=True)
class WriteResult:
    """Per-record outcome of a batch write: ``native_id`` on success, ``error`` otherwise."""

    native_id: str | None = None
    error: SynchubError | None = None
    updated_at: datetime | None = None
    """The record's modification time after the write, by the system's clock, when it says: lets the
    core recognise a late webhook carrying the record as it was before this write."""

    @property
    def ok(self) -> bool:
        return self.error is None


class WebhookRejected(PermanentError):
    """A webhook failed verification or parsing; ``status`` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RateLimit:
    """A connector's declared API budget, overridable per spoke in config."""

    calls: int
    per_seconds: float
    concurrency: int = 4


def secret(settings: Mapping[str, Any], key: str) -> str | None:
    """A secret setting's plain value, for the one place that sends it (an auth header, a login).

    Config hands connectors secrets as ``pydantic.SecretStr`` (resolved from ``env:``/``file:``),
    so they print as ``**********`` everywhere else; tests may pass a plain ``str``.
    """
    value = settings.get(key)
    if value is None:
        return None
    getter = getattr(value, "get_secret_value", None)
    return str(getter()) if callable(getter) else str(value)


class Connector(ABC):
    """Base of every connector. Subclasses set ``kind`` and implement the abstract methods."""

    kind: ClassVar[str]
    batch_size: ClassVar[int] = 100
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=10, per_seconds=1.0)
    entities: ClassVar[tuple[str, ...]] = ()
    webhook_media_types: ClassVar[tuple[str, ...]] = ("application/json",)
    """Content-Types this system's webhooks come with; another declared type is refused (415)."""

    def __init__(self, name: str, settings: Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.settings: dict[str, Any] = dict(settings or {})
        self.calls = 0  # API calls made, for metrics and benchmarks

    @abstractmethod
    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        """Records changed after ``cursor`` (None: from the beginning), oldest first."""

    @abstractmethod
    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        """Write a batch; one result per request, in order. Raise only when the whole call failed."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[InboundEvent]:
        """Verify (constant time) and parse a webhook; raise WebhookRejected when it is not ours."""
        raise WebhookRejected(f"{self.kind} does not accept webhooks", status=404)

    def fetch(self, entity: str, native_ids: list[str]) -> list[NativeRecord]:
        """Read the given records now (reconciliation, replays). Optional."""
        raise NotImplementedError

    def fetch_written(self, entity: str, canonical_ids: list[str]) -> list[NativeRecord]:
        """Read now the records this connector created for these canonical ids, found by the id it
        stamps on them (Salesforce's external id field, the shop's synchub metafield). Optional.

        A create whose answer was lost has no native id yet; before it is sent again the pipeline
        reads it back this way, so an edit made there since is merged rather than overwritten."""
        raise NotImplementedError

    def check(self, fields: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Prove the credentials and settings work (``synchub config check --connect``); raise
        ConfigError naming what is wrong. ``fields``: entity → native top-level field → direction
        (``in``/``out``/``both``), from the mapping, for connectors that can describe their
        objects. The default reads one record with one cheap call."""
        if self.entities:
            self.read_changes(self.entities[0], None, limit=1)

    def close(self) -> None:  # noqa: B027 - optional hook, deliberately a no-op by default
        """Release connections. The default has none."""


@dataclass
class ConnectorRegistry:
    """Connector kinds by name. Filled lazily from ``connectors.<kind>``: core never imports them."""

    kinds: dict[str, type[Connector]] = field(default_factory=dict)

    def register(self, cls: type[Connector]) -> type[Connector]:
        self.kinds[cls.kind] = cls
        return cls

    def get(self, kind: str) -> type[Connector]:
        if kind not in self.kinds:
            try:
                importlib.import_module(f"connectors.{kind}")
            except ModuleNotFoundError as exc:
                raise ConfigError(f"no connector for kind {kind!r}") from exc
        if kind not in self.kinds:
            raise ConfigError(f"module connectors.{kind} did not register a connector")
        return self.kinds[kind]


registry = ConnectorRegistry()
register_connector = registry.register
