"""Running worker processes: the in-process default and ``python -m workers worker`` on Redis.

Shutdown without loss: on SIGTERM (or SIGINT) the runtime's ``stopping`` flag makes every flush
loop stop after the batch in hand, dramatiq's worker waits for the running messages to return (so
their results are recorded in the store and their messages acked), and messages not started stay
in Redis for another worker. Whatever a harder death leaves behind is found again by the sweep.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from dataclasses import dataclass
from types import FrameType

import dramatiq
import structlog
from starlette.applications import Starlette

from core.deployment import check_hub
from core.errors import ConfigError, SynchubError
from core.logging import configure as configure_logging
from core.logging import register_secrets, secret_values
from core.web import create_app
from core.web.auth import Credentials, credentials_from_env
from core.web.server import ServerThread
from core.web.server import serve as serve_web
from workers.actors import Actors, declare, request_flushes, wake_inbox
from workers.broker import SharedPollLease, make_broker
from workers.runtime import Runtime, current

log = structlog.get_logger("synchub.workers")

ENV_BROKER = "SYNCHUB_BROKER_URL"


@dataclass
class Running:
    """Workers started in this process; ``stop()`` is the graceful shutdown."""

    broker: dramatiq.Broker
    actors: Actors
    worker: dramatiq.Worker
    runtime: Runtime

    def stop(self, timeout_ms: int = 600_000) -> None:
        self.runtime.stopping.set()
        self.worker.stop(timeout=timeout_ms)
        self.broker.close()


def start(
    broker_url: str | None = None,
    *,
    threads: int = 4,
    heartbeat_timeout_ms: int | None = None,
    maintenance_chance: int | None = None,
) -> Running:
    """Build the broker (env ``SYNCHUB_BROKER_URL``; empty: in-process), declare the actors, start
    ``threads`` worker threads. The runtime must be installed, or ``SYNCHUB_RUNTIME`` name its factory."""
    runtime = current()
    broker = make_broker(
        broker_address(broker_url, runtime),
        heartbeat_timeout_ms=heartbeat_timeout_ms or _env_int("SYNCHUB_HEARTBEAT_TIMEOUT_MS"),
        maintenance_chance=maintenance_chance or _env_int("SYNCHUB_MAINTENANCE_CHANCE"),
    )
    # The worker starts before the actors declare their queue: dramatiq's in-process StubBroker lists
    # its delay queue among its queues, so a worker started after the declaration takes the delay
    # queue for an ordinary one and holds only 2 × threads delayed messages; a few far-future ones
    # (a back-off, the next flush) then starve every message due now. Declared afterwards, each
    # queue gets its own consumer, the delay queue with dramatiq's large delay prefetch.
    worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
    worker.start()
    actors = declare(broker)
    runtime.pipeline.poll_lease = SharedPollLease(actors.backend)  # one poll of an entity at a time, anywhere
    return Running(broker, actors, worker, runtime)


def web_app(runtime: Runtime, actors: Actors) -> Starlette:
    """The web app wired to the workers: webhook events enqueue the ingest actor, an operator's
    replay or resolution asks for flushes, ``/readyz`` pings the broker."""

    def broker_ping() -> None:
        client = getattr(actors.broker, "client", None)
        if client is not None:
            client.ping()

    def ingest(ids: list[int]) -> None:
        wake_inbox(actors)  # coalesced: one message takes the whole backlog

    return create_app(
        runtime.pipeline,
        credentials=credentials(runtime),
        on_accepted=ingest,
        on_work=lambda: request_flushes(runtime),
        ready_checks={"broker": broker_ping},
    )


def _logging(runtime: Runtime) -> None:
    configure_logging(None, os.environ.get("SYNCHUB_LOG_LEVEL", "INFO"))
    for system in runtime.pipeline.systems.all():
        if system.connector is not None:
            register_secrets(secret_values(system.connector.settings))


def serve(
    broker_url: str | None = None,
    *,
    threads: int = 4,
    scheduler: bool = False,
    sweep_every: float = 10.0,
    web: tuple[str, int] | None = None,
) -> None:
    """Run workers (and the scheduler, when asked: ``synchub run``) until SIGTERM/SIGINT, then
    finish the batches in hand and exit. ``web``: also serve the web app on (host, port)."""
    from workers.scheduler import Scheduler

    stop = _stop_on_signals()
    running = start(broker_url, threads=threads)
    _logging(running.runtime)
    try:
        check_hub(running.runtime.pipeline.systems)
    except ConfigError as exc:  # the org lacks what the mapping needs: fail fast, say what
        print(f"synchub: the hub does not fit its mapping: {exc}", file=sys.stderr, flush=True)
        running.stop(timeout_ms=1000)
        running.runtime.close()
        raise SystemExit(2) from None
    except SynchubError as exc:  # unreachable now: the workers retry what they cannot write
        log.warning("startup_check.failed", error=type(exc).__name__, detail=str(exc))
    server = None
    if web is not None:
        server = ServerThread(web_app(running.runtime, running.actors), host=web[0], port=web[1])
        try:
            server.start()
            print(f"synchub web on {server.url}", flush=True)
        except RuntimeError as exc:  # a busy port must not stop the workers, the main job here
            print(f"synchub web not served: {exc}", flush=True)
            server = None
    ticker = None
    if scheduler:
        ticker = threading.Thread(
            target=Scheduler(running.runtime, running.actors, sweep_every=sweep_every).run, args=(stop,), daemon=True
        )
        ticker.start()
    print(f"synchub worker ready pid={os.getpid()}", flush=True)
    stop.wait()
    if ticker is not None:
        ticker.join(10)
    if server is not None:
        server.stop()
    running.stop()
    running.runtime.close()


def serve_api(broker_url: str | None = None, *, host: str = "127.0.0.1", port: int = 8000) -> None:
    """The API process of a scale-out deployment (``synchub api``): webhooks, dashboard, /metrics.
    It sends messages to the workers but runs none itself."""
    runtime = current()
    broker = make_broker(broker_address(broker_url, runtime))
    actors = declare(broker)
    _logging(runtime)
    try:
        serve_web(web_app(runtime, actors), host, port)
    finally:
        broker.close()
        runtime.close()


def serve_scheduler(broker_url: str | None = None, *, sweep_every: float = 10.0) -> None:
    """Run a scheduler until SIGTERM/SIGINT (leader-elected: any number may run)."""
    from workers.scheduler import Scheduler

    stop = _stop_on_signals()
    runtime = current()
    broker = make_broker(broker_address(broker_url, runtime))
    actors = declare(broker)
    print(f"synchub scheduler ready pid={os.getpid()}", flush=True)
    Scheduler(runtime, actors, sweep_every=sweep_every).run(stop)
    broker.close()
    runtime.close()


def credentials(runtime: Runtime) -> Credentials | None:
    """The dashboard's credential: the config file's ``[api].token``, else the environment's."""
    if runtime.api_token is not None:
        return Credentials.token(runtime.api_token.get_secret_value())
    return credentials_from_env()


def web_address(host: str | None, port: int | None, runtime: Runtime) -> tuple[str, int]:
    """Where to serve: the command's options, else the config's ``[api].bind``, else 127.0.0.1:8000
    (the port also from ``SYNCHUB_API_PORT``)."""
    bind_host, _, bind_port = (runtime.api_bind or "").rpartition(":")
    env_port = os.environ.get("SYNCHUB_API_PORT")
    chosen_port = port if port is not None else int(env_port or bind_port or 8000)
    return host or bind_host or "127.0.0.1", chosen_port


def broker_address(given: str | None, runtime: Runtime) -> str:
    """The broker: the command's ``--broker``, else ``SYNCHUB_BROKER_URL``, else the config file's."""
    if given is not None:
        return given
    return os.environ.get(ENV_BROKER) or runtime.broker_url or ""


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None
