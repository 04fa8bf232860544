"""The process-global runtime the actors work with: one Pipeline (store + systems) and its knobs.

Whoever starts workers installs it first: tests build it from their own deployment
(``install(Runtime(pipeline))``); ``synchub worker`` / ``python -m workers`` build it from the
config file (``--config``, ``SYNCHUB_CONFIG`` or ``./config.toml``), or from a factory named by
``SYNCHUB_RUNTIME`` (``"package.module:function"``, returning a ``Runtime``) for deployments built
in Python. Actors never build their own pipeline: one per process, shared by its worker threads.
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import SecretStr

from core.config import ENV_CONFIG, Config, load_config
from core.connector import RateLimit
from core.deployment import build_pipeline
from core.errors import ConfigError
from core.sync.pipeline import Pipeline

ENV_FACTORY = "SYNCHUB_RUNTIME"


@dataclass
class Runtime:
    """What the actors need. ``rate_limits`` overrides a connector's declared ``rate_limit`` per system."""

    pipeline: Pipeline
    flush_window: float = 0.05
    """Seconds a new outbox row may wait for others to fill its batch before a flush is sent."""
    sweep_after: float = 30.0
    """Inbox rows pending longer than this are re-enqueued by the sweep (their message was lost)."""
    inbox_keep: float = 0.0
    """Seconds a closed inbox row is kept before the sweep deletes it (``[state] inbox_keep``); 0: forever."""
    max_batches_per_message: int = 20
    """A flush message writes at most this many batches, then hands over to a fresh message."""
    poll_every: dict[tuple[str, str], float] = field(default_factory=dict)
    """(system, entity) → seconds between polls, for the scheduler; default ``default_poll_every``."""
    default_poll_every: float = 300.0
    reconcile_every: dict[tuple[str, str], float] = field(default_factory=dict)
    """(system, entity) → seconds between full reconciliations (none unless configured)."""
    rate_limits: dict[str, RateLimit] = field(default_factory=dict)
    broker_url: str | None = None
    """The config file's ``[broker].url``; the environment's ``SYNCHUB_BROKER_URL`` wins over it."""
    api_bind: str | None = None
    """The config file's ``[api].bind`` (``host:port``), used when the command names none."""
    api_token: SecretStr | None = None
    """The config file's ``[api].token``: required for the web app beyond localhost."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set on SIGTERM: flush loops finish the batch in hand and stop taking new ones."""

    def rate_limit(self, system: str) -> RateLimit:
        if system in self.rate_limits:
            return self.rate_limits[system]
        connector = self.pipeline.systems.get(system).connector
        return connector.rate_limit if connector is not None else RateLimit(calls=10, per_seconds=1.0)

    def close(self) -> None:
        for system in self.pipeline.systems.all():
            if system.connector is not None:
                system.connector.close()
        self.pipeline.store.close()


_current: Runtime | None = None
_lock = threading.Lock()


def install(runtime: Runtime | None) -> None:
    """Make ``runtime`` the one the actors of this process use (None: uninstall)."""
    global _current
    with _lock:
        _current = runtime


def load_factory(spec: str) -> Callable[[], Runtime]:
    """Import ``"module:function"``."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{ENV_FACTORY} must look like 'package.module:function', not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import the runtime factory module {module_name!r}: {exc}") from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise ConfigError(f"{spec!r}: {attr!r} is not a function of {module_name}")
    return factory  # type: ignore[no-any-return]


def current() -> Runtime:
    """The installed runtime; built on first use when none was installed, from the config file named
    by ``SYNCHUB_CONFIG`` (or ``./config.toml`` when it exists), else the factory named by
    ``SYNCHUB_RUNTIME``."""
    global _current
    with _lock:
        if _current is None:
            spec = os.environ.get(ENV_FACTORY)
            config_file = os.environ.get(ENV_CONFIG) or ("config.toml" if os.path.exists("config.toml") else None)
            if config_file and not spec:
                _current = runtime_from_config(load_config(config_file))
                return _current
            if not spec:
                raise ConfigError(
                    f"no deployment: pass --config FILE, set {ENV_CONFIG}, or create ./config.toml "
                    f"(or name a runtime factory in {ENV_FACTORY})"
                )
            runtime = load_factory(spec)()
            if not isinstance(runtime, Runtime):
                raise ConfigError(f"{spec!r} returned {type(runtime).__name__}, not a Runtime")
            _current = runtime
        return _current


def runtime_from_config(config: Config) -> Runtime:
    """The runtime a config file describes: its pipeline, batching window, polls and rate limits."""
    pipeline = build_pipeline(config)
    poll_every: dict[tuple[str, str], float] = {}
    rate_limits: dict[str, RateLimit] = {}
    reconcile_every: dict[tuple[str, str], float] = {}
    for name, settings in config.systems().items():
        system = pipeline.systems.get(name)
        if settings.poll_every is not None:
            for entity in system.flows:
                if system.reads(entity):
                    poll_every[(name, entity)] = settings.poll_every
        if settings.reconcile_every is not None:
            for entity in system.flows:
                reconcile_every[(name, entity)] = settings.reconcile_every
        if settings.rate_limit is not None:
            r = settings.rate_limit
            rate_limits[name] = RateLimit(calls=r.calls, per_seconds=r.per_seconds, concurrency=r.concurrency)
    w = config.workers
    return Runtime(
        pipeline,
        flush_window=w.flush_window,
        sweep_after=w.sweep_after,
        inbox_keep=config.state.inbox_keep,
        poll_every=poll_every,
        default_poll_every=w.default_poll_every,
        rate_limits=rate_limits,
        reconcile_every=reconcile_every,
        broker_url=config.broker.url,
        api_bind=config.api.bind,
        api_token=config.api.token,
    )
