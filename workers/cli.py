"""The worker commands of ``synchub``: ``worker``, ``scheduler``, ``run``, ``api`` and ``replay``.

They join the core CLI here, not in ``core/cli.py``, because core never imports workers; the
``synchub`` script points at ``workers.cli:main``. Until config loading lands, the deployment comes
from the runtime factory named by ``SYNCHUB_RUNTIME`` (``"package.module:function"``).
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated

import typer

from core.cli import app, err, out
from core.errors import ConfigError
from core.sync.replay import open_dead_letters, replay
from core.web.auth import check_bind
from workers import run
from workers.runtime import current

BROKER_HELP = "broker URL: empty for in-process, or redis://… (default: env SYNCHUB_BROKER_URL)"


@app.command("worker")
def worker_command(
    threads: Annotated[int, typer.Option(help="worker threads in this process")] = 4,
    broker: Annotated[str | None, typer.Option(help=BROKER_HELP)] = None,
) -> None:
    """Run worker threads until SIGTERM; then finish the batch in hand and exit."""
    run.serve(broker, threads=threads)


@app.command("scheduler")
def scheduler_command(
    broker: Annotated[str | None, typer.Option(help=BROKER_HELP)] = None,
    sweep_every: Annotated[float, typer.Option(help="seconds between sweeps of pending work")] = 10.0,
) -> None:
    """Send polls and sweeps while leader (a Redis lock); any number may run, one sends."""
    run.serve_scheduler(broker, sweep_every=sweep_every)


HOST_HELP = "address to serve the dashboard and webhooks on; beyond 127.0.0.1 a credential is required"
PORT_HELP = "port of the dashboard and webhooks (env SYNCHUB_API_PORT, else the config's [api].bind, else 8000)"


@app.command("run")
def run_command(
    threads: Annotated[int, typer.Option(help="worker threads")] = 4,
    broker: Annotated[str | None, typer.Option(help=BROKER_HELP)] = None,
    sweep_every: Annotated[float, typer.Option(help="seconds between sweeps of pending work")] = 10.0,
    host: Annotated[str | None, typer.Option(help=HOST_HELP)] = None,
    port: Annotated[int | None, typer.Option(help=PORT_HELP)] = None,
    web: Annotated[bool, typer.Option(help="serve the dashboard and webhooks too")] = True,
) -> None:
    """Workers, the scheduler and the web app in one process (in-process broker unless one is given)."""
    try:
        runtime = current()
        address = run.web_address(host, port, runtime)
        if web:
            check_bind(address[0], run.credentials(runtime))
    except ConfigError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    run.serve(broker, threads=threads, scheduler=True, sweep_every=sweep_every, web=address if web else None)


@app.command("api")
def api_command(
    broker: Annotated[str | None, typer.Option(help=BROKER_HELP)] = None,
    host: Annotated[str | None, typer.Option(help=HOST_HELP)] = None,
    port: Annotated[int | None, typer.Option(help=PORT_HELP)] = None,
) -> None:
    """The web app alone (webhooks, dashboard, /metrics, /healthz, /readyz); workers run elsewhere."""
    try:
        runtime = current()
        address = run.web_address(host, port, runtime)
        check_bind(address[0], run.credentials(runtime))
    except ConfigError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    run.serve_api(broker, host=address[0], port=address[1])


@app.command("replay")
def replay_command(
    ids: Annotated[list[int] | None, typer.Argument(help="dead-letter ids; default: every open one")] = None,
    system: Annotated[str | None, typer.Option(help="only dead letters of this system")] = None,
    since: Annotated[datetime | None, typer.Option(help="only dead letters created at or after this time")] = None,
) -> None:
    """Put dead letters back on their way; the next flush (or sweep) writes them."""
    runtime = current()
    chosen = open_dead_letters(runtime.pipeline, system=system, since=since, ids=ids or None)
    results = replay(runtime.pipeline, chosen)
    for r in results:
        out.print(f"{r.dead_letter_id}  {r.system}  {r.outcome}")
    out.print(f"{len(results)} dead letter(s) replayed")
    if os.environ.get(run.ENV_BROKER):
        from workers.actors import declare, request_flushes
        from workers.broker import make_broker

        broker = make_broker(os.environ[run.ENV_BROKER])
        declare(broker)
        request_flushes(runtime)
        broker.close()


@app.command("reconcile")
def reconcile_command(
    system: Annotated[str, typer.Argument(help="system name, e.g. shop_pl or crm")],
    entity: Annotated[str, typer.Argument(help="canonical entity, e.g. customer")],
    recreate_missing: Annotated[
        bool, typer.Option(help="write again records the hub links to the system but it no longer has")
    ] = False,
    dry_run: Annotated[bool, typer.Option(help="report what would be repaired; change nothing")] = False,
) -> None:
    """Compare a system with the hub record by record and repair drift (missed webhooks, manual edits)."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from core.sync.reconcile import reconcile

    runtime = current()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=out) as bar:
        task = bar.add_task(f"reading {system} {entity}", total=None)
        report = reconcile(
            runtime.pipeline,
            system,
            entity,
            recreate_missing=recreate_missing,
            dry_run=dry_run,
            progress=lambda n: bar.update(task, description=f"reading {system} {entity}: {n} records"),
        )
    verb = "would repair" if dry_run else "repaired"
    out.print(
        f"{report.scanned} records of {system} {entity}: {report.in_step} in step; {verb}: "
        f"{report.new} new, {report.drifted} drifted, {report.behind} behind, {report.recreated} recreated; "
        f"{report.missing} missing, {report.dead} dead-lettered, {report.unlinked} unlinked"
    )
    for outcome, ids in sorted(report.examples.items()):
        if outcome != "in_step":
            out.print(f"  {outcome}: {', '.join(ids)}")
    if not dry_run and report.repaired and os.environ.get(run.ENV_BROKER):
        from workers.actors import declare, request_flushes
        from workers.broker import make_broker

        broker = make_broker(os.environ[run.ENV_BROKER])
        declare(broker)
        request_flushes(runtime)
        broker.close()


@app.command("demo")
def demo_command(
    once: Annotated[bool, typer.Option("--once", help="run the day, print the summary and exit")] = False,
    people: Annotated[int, typer.Option(help="customers of the demo retailer")] = 300,
    port: Annotated[int | None, typer.Option(help="dashboard port (default: a free one)")] = None,
    erp: Annotated[
        bool, typer.Option("--erp/--no-erp", help="run the ERP and store POS on a real Tryton server (built once)")
    ] = True,
) -> None:
    """One omnichannel day of a Polish retailer on the emulators, from config.example.toml."""
    from sandbox.demo.day import run as run_demo

    result = run_demo(people, once=once, port=port, console=out, with_erp=erp)
    if result.summary.lost:
        raise typer.Exit(1)


def main() -> None:
    app()
