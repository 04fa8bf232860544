"""Deployment config: one TOML file loaded into pydantic models, every error with file:line.

Why a loader of our own around ``tomllib`` and pydantic: an operator who mistypes a key at 2 a.m.
needs ``config.toml:31: spokes.shop_pl.poll_evry: unknown key (did you mean 'poll_every'?)``, not
a traceback. ``tomllib`` reports syntax errors with their line; pydantic reports the key path of a
validation error, and ``_Locator`` finds that path's line in the text.

Secrets never appear literally: a value ``env:NAME`` is read from the environment and ``file:/path``
from a file (a mounted secret), at load time. Values of secret-looking keys (``token``,
``password``, ``private_key``, …) become ``SecretStr`` — printed as ``**********`` — and a literal
value there is refused, so a token cannot be committed to git by accident. Connectors read them
through ``core.connector.secret``.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, ValidationError, field_validator

from core.errors import ConfigError
from core.model import ENTITIES

Flow = Literal["both", "in", "out"]
ENV_CONFIG = "SYNCHUB_CONFIG"

_SECRET_KEY = re.compile(r"(^|_)(token|password|secret|private_key|api_key|client_secret|key)$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def is_secret_key(key: str) -> bool:
    """Keys whose values are secrets by name (``token``, ``webhook_secret``, ``private_key``, …)."""
    return bool(_SECRET_KEY.search(key))


def parse_duration(value: Any) -> Any:
    """``"5m"``, ``"30s"``, ``"250ms"``, ``"1h"``, ``"1d"`` or a number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration such as '30s', '5m' or a number of seconds")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"{value!r} is not a duration: write e.g. '30s', '5m', '1h' or a number of seconds")


Duration = Annotated[float, BeforeValidator(parse_duration), Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Section):
    """How long a failing write is retried before it becomes a dead letter."""

    max_attempts: int = Field(8, ge=1)
    max_age: Duration | None = 24 * 3600.0
    base_delay: Duration = 1.0
    max_delay: Duration = 300.0


class RateLimitSettings(_Section):
    """Overrides a connector's declared budget: ``calls`` per ``per_seconds``, ``concurrency`` at once."""

    calls: int = Field(ge=1)
    per_seconds: Duration = 1.0
    concurrency: int = Field(4, ge=1)


class SystemSettings(BaseModel):
    """One system: the hub or a spoke. Keys not named here are the connector's own settings."""

    model_config = ConfigDict(extra="allow", frozen=True)

    kind: str
    mapping: Path
    connector: str | None = None
    """The connector to use when it is not the kind's own: ``memory`` keeps records in-process
    (dry runs, tests); the kind still names the system in mappings and ownership rules."""
    name: str | None = None
    """The hub's system name in the store and the dashboard (default ``crm``); spokes are named by
    their table key (``[spokes.shop_pl]`` → ``shop_pl``)."""
    entities: dict[str, Flow] = Field(default_factory=dict)
    poll_every: Duration | None = None
    reconcile_every: Duration | None = None
    """A full comparison with the hub (``synchub reconcile``) this often; none by default."""
    batch_size: int | None = Field(None, ge=1)
    rate_limit: RateLimitSettings | None = None

    @field_validator("entities")
    @classmethod
    def _known_entities(cls, value: dict[str, Flow]) -> dict[str, Flow]:
        for name in value:
            if name not in ENTITIES:
                raise ValueError(f"unknown entity {name!r}{_hint(name, ENTITIES)}")
        return value

    @property
    def connector_kind(self) -> str:
        return self.connector or self.kind

    def connector_settings(self) -> dict[str, Any]:
        """What the connector is constructed with: its own keys, secrets as SecretStr."""
        return dict(self.model_extra or {})


class StateSettings(_Section):
    url: str = "sqlite:///synchub.db"
    sqlite_cache_mb: int = Field(64, ge=1)
    """SQLite only: each connection's page cache, in MiB (``PRAGMA cache_size``)."""
    sqlite_mmap_mb: int = Field(256, ge=0)
    """SQLite only: how much of the database file is memory-mapped, in MiB (``PRAGMA mmap_size``);
    0 turns the map off. SQLite caps it at 2 GiB unless built otherwise."""
    inbox_keep: Duration = 7 * 86400.0
    """How long an ingested (or ignored) webhook's inbox row is kept; the sweep deletes older ones.
    A redelivery is recognised as one for that long (Shopify retries for 48 hours). 0: forever."""


class BrokerSettings(_Section):
    url: str = ""
    """Empty: an in-process broker and worker threads (one box); ``redis://…`` to scale out."""


class ApiSettings(_Section):
    bind: str = "127.0.0.1:8080"
    token: SecretStr | None = None
    """Required for any bind address other than localhost."""
    username: str = "admin"
    max_body_bytes: int = Field(1_048_576, ge=1024)


class WorkerSettings(_Section):
    threads: int = Field(4, ge=1)
    flush_window: Duration = 1.0
    """A new outbox row waits at most this long for others to fill its batch."""
    sweep_after: Duration = 30.0
    default_poll_every: Duration = 300.0


class Config(_Section):
    """A whole deployment. ``source`` is the file it came from (mapping paths are relative to it)."""

    hub: SystemSettings
    spokes: dict[str, SystemSettings] = Field(default_factory=dict)
    state: StateSettings = StateSettings()
    broker: BrokerSettings = BrokerSettings()
    api: ApiSettings = ApiSettings()
    workers: WorkerSettings = WorkerSettings()
    retry: RetrySettings = RetrySettings()
    source: Path | None = None

    def mapping_path(self, system: SystemSettings) -> Path:
        base = self.source.parent if self.source is not None else Path.cwd()
        return system.mapping if system.mapping.is_absolute() else base / system.mapping

    @property
    def hub_name(self) -> str:
        return self.hub.name or "crm"

    def systems(self) -> dict[str, SystemSettings]:
        """Every system by its name, the hub first."""
        return {self.hub_name: self.hub, **self.spokes}


@dataclass(frozen=True)
class ConfigIssue:
    file: str
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigFileError(ConfigError):
    """A config file failed to load; ``issues`` lists every problem found, each with its line."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(i) for i in issues))
        self.issues = issues


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> Config:
    """Read, resolve secrets and validate ``path``; raise ConfigFileError listing every problem."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(
            [ConfigIssue(str(file), None, "", f"cannot read the config file: {exc.strerror}")]
        ) from None
    return parse_config(text, file, environ=environ)


def parse_config(text: str, file: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    name = str(file)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        line = int(m.group(1)) if m else None
        raise ConfigFileError([ConfigIssue(name, line, "", f"not valid TOML: {exc}")]) from None
    locate = _Locator(text)
    issues: list[ConfigIssue] = []
    resolved = _resolve_secrets(raw, (), environ if environ is not None else os.environ, issues, name, locate)
    try:
        config = Config.model_validate({**resolved, "source": file})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            issues.append(ConfigIssue(name, locate(loc), ".".join(loc), _message(err, loc)))
        raise ConfigFileError(issues) from None
    if issues:
        raise ConfigFileError(issues)
    return config


def _message(err: Any, loc: tuple[str, ...]) -> str:
    if err["type"] == "extra_forbidden":
        known = _known_keys(loc[:-1])
        return f"unknown key{_hint(loc[-1], known)}"
    if err["type"] == "missing":
        return "required key is missing"
    msg = str(err["msg"])
    return msg.removeprefix("Value error, ")


def _known_keys(parent: tuple[str, ...]) -> list[str]:
    model: Any = Config
    for part in parent:
        fields = getattr(model, "model_fields", None)
        if fields is None or part not in fields:
            return []
        model = fields[part].annotation
    fields = getattr(model, "model_fields", {})
    return [k for k in fields if k != "source"]


def _hint(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _resolve_secrets(
    node: Any,
    loc: tuple[str, ...],
    environ: Mapping[str, str],
    issues: list[ConfigIssue],
    file: str,
    locate: _Locator,
) -> Any:
    """Replace ``env:``/``file:`` references by their values; secret keys' values by SecretStr."""
    if isinstance(node, dict):
        return {k: _resolve_secrets(v, (*loc, k), environ, issues, file, locate) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve_secrets(v, (*loc, str(i)), environ, issues, file, locate) for i, v in enumerate(node)]
    if not isinstance(node, str) or not loc:
        return node
    key = loc[-1]
    secret = is_secret_key(key)
    value: str | None = node
    if node.startswith("env:"):
        var = node[4:]
        value = environ.get(var)
        if value is None:
            issues.append(ConfigIssue(file, locate(loc), ".".join(loc), f"environment variable {var} is not set"))
    elif node.startswith("file:"):
        try:
            value = Path(node[5:]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            issues.append(
                ConfigIssue(file, locate(loc), ".".join(loc), f"cannot read secret file {node[5:]}: {exc.strerror}")
            )
            value = None
    elif secret and node:
        issues.append(
            ConfigIssue(
                file,
                locate(loc),
                ".".join(loc),
                "a secret must not be written in the file: use 'env:NAME' or 'file:/path'",
            )
        )
        value = None
    if value is None:
        return None
    return SecretStr(value) if secret else value


class _Locator:
    """Finds the line of a key path (``("spokes", "shop_pl", "poll_every")``) in TOML text.

    Tracks ``[table]`` headers and ``key = value`` lines (dotted and quoted keys included); the
    line whose path is the longest prefix of the wanted path wins, so an error inside an inline
    table points at its key's line and a missing key at its table's header.
    """

    _HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
    _KEY = re.compile(
        r"^\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*="
    )

    def __init__(self, text: str) -> None:
        self.paths: list[tuple[tuple[str, ...], int]] = []
        table: tuple[str, ...] = ()
        for number, line in enumerate(text.splitlines(), start=1):
            header = self._HEADER.match(line)
            if header:
                table = self._split(header.group(1))
                self.paths.append((table, number))
                continue
            key = self._KEY.match(line)
            if key:
                self.paths.append(((*table, *self._split(key.group(1))), number))

    @staticmethod
    def _split(dotted: str) -> tuple[str, ...]:
        parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_-]+)", dotted)
        return tuple(next(p for p in groups if p) if any(groups) else "" for groups in parts)

    def __call__(self, loc: tuple[str, ...]) -> int | None:
        best: tuple[int, int] | None = None
        for path, line in self.paths:
            if len(path) <= len(loc) and loc[: len(path)] == path and (best is None or len(path) > best[0]):
                best = (len(path), line)
        return best[1] if best else None
