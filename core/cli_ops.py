"""The operator's commands: ``status``, ``deadletters``, ``conflicts``, ``backfill``.

Each is a thin face over ``core.sync.operations`` — the dashboard calls the same functions — and
prints with rich. ``load_deployment`` is the one place that finds the deployment, so config
loading can replace it in one edit: today the runtime factory named by ``SYNCHUB_RUNTIME``
(as ``synchub worker`` does), else only the store (``--store`` / ``SYNCHUB_STORE_URL``), which
is enough to list, show and discard but not to replay, resolve or backfill.
"""

from __future__ import annotations

import getpass
import importlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from core.config import ENV_CONFIG, load_config
from core.deployment import build_pipeline
from core.errors import ConfigError, SynchubError
from core.logging import register_secrets, secret_values
from core.store.db import Store
from core.sync import operations as ops
from core.sync.pipeline import Pipeline

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)
STORE_HELP = "state store URL (env SYNCHUB_STORE_URL; default sqlite:///synchub.db); ignored with SYNCHUB_RUNTIME"
STATE_STYLE = {"healthy": "green", "degraded": "yellow", "failing": "red", "paused": "dim"}


@dataclass
class Deployment:
    store: Store
    pipeline: Pipeline | None

    def need_pipeline(self) -> Pipeline:
        if self.pipeline is None:
            err.print("[red]this command needs the deployment's systems: set SYNCHUB_RUNTIME=module:function[/]")
            raise typer.Exit(2)
        return self.pipeline


def load_deployment(store: str | None = None) -> Deployment:
    """Find the deployment: the ``SYNCHUB_RUNTIME`` factory's pipeline, else the config file's
    (``--config``, ``SYNCHUB_CONFIG``, ``./config.toml``), else the store alone (``--store``)."""
    spec = os.environ.get("SYNCHUB_RUNTIME")
    if spec:
        module_name, _, attr = spec.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"SYNCHUB_RUNTIME={spec!r} cannot be loaded: {exc}") from exc
        built = factory()
        pipeline = getattr(built, "pipeline", built)
        if not isinstance(pipeline, Pipeline):
            raise ConfigError(f"SYNCHUB_RUNTIME={spec!r} gave neither a runtime nor a pipeline")
        for system in pipeline.systems.all():
            if system.connector is not None:
                register_secrets(secret_values(system.connector.settings))
        return Deployment(pipeline.store, pipeline)
    config_file = os.environ.get(ENV_CONFIG) or ("config.toml" if os.path.exists("config.toml") else None)
    if config_file and not store and not os.environ.get("SYNCHUB_STORE_URL"):
        config = load_config(config_file)
        pipeline = build_pipeline(config)
        for system in pipeline.systems.all():
            if system.connector is not None:
                register_secrets(secret_values(system.connector.settings))
        return Deployment(pipeline.store, pipeline)
    url = store or os.environ.get("SYNCHUB_STORE_URL") or "sqlite:///synchub.db"
    return Deployment(Store(url), None)


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)


def _when(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "—"


def _fail(exc: SynchubError) -> typer.Exit:
    err.print(f"[red]{exc}[/]")
    return typer.Exit(1)


StoreOpt = Annotated[str | None, typer.Option("--store", help=STORE_HELP)]


def status(store: StoreOpt = None) -> None:
    """Every flow's state, lag, throughput, error rate, queues and dead letters (the overview)."""
    pipeline = load_deployment(store).need_pipeline()
    table = Table(title="synchub status")
    for col in ("system", "entity", "state", "last success", "lag", "per min", "errors", "inbox", "outbox", "dead"):
        table.add_column(col, justify="right" if col in ("per min", "inbox", "outbox", "dead", "lag") else "left")
    table.add_column("API quota")
    for f in ops.overview(pipeline):
        style = STATE_STYLE[f.state]
        quota = f"{f.api_usage['ratio'] * 100:.0f} %" if f.api_usage else "—"
        table.add_row(
            f.system,
            f.entity,
            f"[{style}]{f.state}[/]",
            _when(f.last_success),
            f"{f.lag_seconds:.0f} s" if f.lag_seconds is not None else "—",
            f"{f.throughput_per_min:.1f}",
            f"{f.error_rate * 100:.0f} %",
            str(f.inbox_pending),
            str(f.outbox_pending),
            str(f.dead_letters),
            quota,
        )
    out.print(table)


deadletters_app = typer.Typer(help="List, show, replay and discard dead letters.", no_args_is_help=True)


@deadletters_app.command("list")
def deadletters_list(
    system: Annotated[str | None, typer.Option(help="only this system")] = None,
    entity: Annotated[str | None, typer.Option(help="only this entity")] = None,
    kind: Annotated[str | None, typer.Option(help="only this error kind, e.g. RecordRejected")] = None,
    status: Annotated[str, typer.Option(help="open, replayed, discarded or any")] = "open",
    limit: Annotated[int, typer.Option(help="at most this many, newest first")] = 100,
    store: StoreOpt = None,
) -> None:
    """Dead letters, newest first."""
    rows = ops.list_dead_letters(
        load_deployment(store).store,
        system=system,
        entity=entity,
        error_kind=kind,
        status=None if status == "any" else status,
        limit=limit,
    )
    table = Table(title=f"{len(rows)} dead letter(s)")
    for col in ("id", "when", "stage", "system", "entity", "record", "error", "attempts", "status"):
        table.add_column(col, overflow="fold")
    for d in rows:
        table.add_row(
            str(d.id),
            _when(d.created_at),
            d.stage,
            d.system,
            d.entity,
            d.native_id or d.canonical_id or "",
            f"{d.error_kind}: {d.error[:100]}",
            str(d.attempts),
            d.status,
        )
    out.print(table)


@deadletters_app.command("show")
def deadletters_show(dead_letter_id: Annotated[int, typer.Argument()], store: StoreOpt = None) -> None:
    """One dead letter: the error as the system returned it, and the payload (JSON)."""
    d = ops.get_dead_letter(load_deployment(store).store, dead_letter_id)
    if d is None:
        err.print(f"no dead letter {dead_letter_id}")
        raise typer.Exit(1)
    out.print(f"[bold]dead letter {d.id}[/]  {d.status}  {d.stage} {d.system}/{d.entity}  attempts={d.attempts}")
    out.print(f"record: {d.canonical_id or '—'}  native id: {d.native_id or '—'}  trace: {d.trace_id}")
    out.print(f"created: {_when(d.created_at)}" + (f"  reason: {d.reason}" if d.reason else ""))
    out.print(f"[red]{d.error_kind}[/]: {d.error}", soft_wrap=True)
    if d.details:
        out.print_json(_json(d.details))
    out.print_json(_json(d.payload))


@deadletters_app.command("replay")
def deadletters_replay(
    ids: Annotated[list[int] | None, typer.Argument(help="dead-letter ids")] = None,
    all_open: Annotated[bool, typer.Option("--all", help="every open dead letter (with --system)")] = False,
    system: Annotated[str | None, typer.Option(help="with --all: only this system")] = None,
    edit: Annotated[Path | None, typer.Option(help="replace the payload of the one id with this JSON file")] = None,
    store: StoreOpt = None,
) -> None:
    """Put dead letters back on their way (the workers write them on their next flush or sweep)."""
    pipeline = load_deployment(store).need_pipeline()
    try:
        if edit is not None:
            if not ids or len(ids) != 1:
                err.print("--edit takes exactly one dead-letter id")
                raise typer.Exit(2)
            payload = json.loads(edit.read_text(encoding="utf-8"))
            results = [ops.edit_and_replay(pipeline, ids[0], payload, actor=_actor())]
        else:
            chosen = list(ids or [])
            if all_open:
                chosen += [d.id for d in ops.list_dead_letters(pipeline.store, system=system, limit=100_000)]
            if not chosen:
                err.print("name dead-letter ids, or --all")
                raise typer.Exit(2)
            results = ops.replay_dead_letters(pipeline, dict.fromkeys(chosen), actor=_actor())
    except (SynchubError, ValueError, OSError) as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    for r in results:
        out.print(f"{r.dead_letter_id}  {r.system}  {r.outcome}")
    out.print(f"{len(results)} dead letter(s) replayed")


@deadletters_app.command("discard")
def deadletters_discard(
    ids: Annotated[list[int], typer.Argument(help="dead-letter ids")],
    reason: Annotated[str, typer.Option(help="why (kept with each and in the audit trail)")],
    store: StoreOpt = None,
) -> None:
    """Close dead letters without replaying them."""
    deployment = load_deployment(store)
    now = deployment.pipeline.clock() if deployment.pipeline else ops_now()
    try:
        n = ops.discard_dead_letters(deployment.store, ids, reason=reason, actor=_actor(), now=now)
    except SynchubError as exc:
        raise _fail(exc) from None
    out.print(f"{n} dead letter(s) discarded")


def ops_now() -> Any:
    from core.sync.pipeline import utcnow

    return utcnow()


conflicts_app = typer.Typer(help="List and resolve conflicts parked for a person.", no_args_is_help=True)


@conflicts_app.command("list")
def conflicts_list(
    status: Annotated[str, typer.Option(help="open, resolved or any")] = "open",
    store: StoreOpt = None,
) -> None:
    """Conflicts with both values, their sources and times."""
    rows = ops.list_conflicts(load_deployment(store).store, status=None if status == "any" else status)
    table = Table(title=f"{len(rows)} conflict(s)")
    for col in ("id", "record", "field", "golden", "from", "incoming", "from", "rule", "status"):
        table.add_column(col, overflow="fold")
    for c in rows:
        table.add_row(
            str(c.id),
            f"{c.entity} {c.canonical_id[:8]}",
            c.field,
            _json(c.golden.value),
            f"{c.golden.system} {_when(c.golden.at)}",
            _json(c.incoming.value),
            f"{c.incoming.system} {_when(c.incoming.at)}",
            c.rule,
            c.status,
        )
    out.print(table)


@conflicts_app.command("resolve")
def conflicts_resolve(
    conflict_id: Annotated[int, typer.Argument()],
    golden: Annotated[bool, typer.Option("--golden", help="keep the golden value")] = False,
    incoming: Annotated[bool, typer.Option("--incoming", help="take the incoming value")] = False,
    value: Annotated[str | None, typer.Option(help="use this value (JSON, or text for a text field)")] = None,
    store: StoreOpt = None,
) -> None:
    """Decide a conflict; the value is applied to the golden record and sent to every system."""
    if sum((golden, incoming, value is not None)) != 1:
        err.print("choose exactly one of --golden, --incoming, --value")
        raise typer.Exit(2)
    pipeline = load_deployment(store).need_pipeline()
    choice: ops.Choice = "golden" if golden else "incoming" if incoming else "value"
    typed: Any = None
    if value is not None:
        current = ops.get_conflict(pipeline.store, conflict_id)
        typed = value
        if current is not None and not isinstance(current.golden.value, str):
            try:
                typed = json.loads(value)
            except ValueError:
                typed = value
    try:
        rows = ops.resolve_conflict(pipeline, conflict_id, choice, value=typed, actor=_actor())
    except SynchubError as exc:
        raise _fail(exc) from None
    out.print(f"conflict {conflict_id} resolved ({choice}); {rows} write(s) queued")


def backfill(
    system: Annotated[str, typer.Argument(help="the system to read, e.g. shop_pl")],
    entity: Annotated[str, typer.Argument(help="canonical entity, e.g. customer")],
    page_size: Annotated[int, typer.Option(help="records per read")] = 500,
    store: StoreOpt = None,
) -> None:
    """Read every record of an entity from a system from the beginning and ingest it (idempotent)."""
    pipeline = load_deployment(store).need_pipeline()
    started = time.monotonic()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=out, transient=False) as bar:
        task = bar.add_task(f"backfill {system}/{entity}", total=None, rate="")

        def on_page(p: ops.BackfillProgress) -> None:
            rate = p.read / max(time.monotonic() - started, 1e-6)
            bar.update(task, completed=p.read, total=p.total, rate=f"{rate:.0f}/s")

        try:
            result = ops.backfill(pipeline, system, entity, page_size=page_size, on_page=on_page)
        except SynchubError as exc:
            raise _fail(exc) from None
    summary = ", ".join(f"{n} {k}" for k, n in sorted(result.outcomes.items())) or "nothing"
    out.print(f"read {result.read} record(s) in {result.pages} page(s): {summary}; the workers write what was queued")


def register(app: typer.Typer) -> None:
    """Add the operator's commands to the ``synchub`` app."""
    app.command("status")(status)
    app.command("backfill")(backfill)
    app.add_typer(deadletters_app, name="deadletters")
    app.add_typer(conflicts_app, name="conflicts")
