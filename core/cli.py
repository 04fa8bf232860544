"""The ``synchub`` command line. Sub-commands are thin: each calls one library function and
prints its result, so everything the CLI does is also testable without a terminal."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from core import cli_ops
from core.config import ENV_CONFIG, ConfigFileError, load_config
from mappings.canonical import validation_problems
from mappings.errors import FieldError, LoadIssue
from mappings.loader import check_file, shipped_mappings
from mappings.paths import MISSING, format_path, get_path
from mappings.spec import MappingSpec, MappingTestSpec
from mappings.testfile import companion_test_file, run_test_file, to_jsonable

app = typer.Typer(no_args_is_help=True)
mappings_app = typer.Typer(help="Check, test and preview mapping files.", no_args_is_help=True)
app.add_typer(mappings_app, name="mappings")
config_app = typer.Typer(help="Check a deployment config file.", no_args_is_help=True)
app.add_typer(config_app, name="config")
cli_ops.register(app)  # status, deadletters, conflicts, backfill

FILES_HELP = "mapping or .test.yaml files; default: every shipped mapping and its test file"
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def _print_issues(issues: list[LoadIssue]) -> None:
    for issue in issues:
        hint = f" [cyan]({issue.hint})[/]" if issue.hint else ""
        err.print(
            f"[bold]{issue.file}:{issue.line}:{issue.column}[/]: [red]{issue.message}[/]{hint}",
            markup=True,
            soft_wrap=True,
        )


def _split_files(files: list[Path] | None) -> tuple[list[Path], list[Path]]:
    """Mapping files and test files among ``files``; none given → all shipped, with their tests."""
    if not files:
        maps = shipped_mappings()
        return maps, [t for t in (companion_test_file(m) for m in maps) if t.exists()]
    maps = [f for f in files if not f.name.endswith(".test.yaml")]
    tests = [f for f in files if f.name.endswith(".test.yaml")]
    return maps, tests


@mappings_app.command("check")
def mappings_check(
    files: Annotated[list[Path] | None, typer.Argument(help=FILES_HELP)] = None,
) -> None:
    """Validate mapping files (and test files): every problem with file:line:column."""
    maps, tests = _split_files(files)
    failed = 0
    for path in maps:
        mapping, issues = check_file(path)
        if mapping is None:
            failed += 1
            _print_issues(issues)
            continue
        nfields = sum(len(e.fields) for e in mapping.entities.values())
        out.print(f"ok  {path}  ({mapping.system}: {len(mapping.entities)} entities, {nfields} fields)")
    for path in tests:
        result = run_test_file(path)
        if result.issues:
            failed += 1
            _print_issues(result.issues)
        else:
            out.print(f"ok  {path}  ({len(result.cases)} cases)")
    if failed:
        err.print(f"[red]{failed} file(s) with errors[/]")
        raise typer.Exit(1)


@mappings_app.command("test")
def mappings_test(
    files: Annotated[list[Path] | None, typer.Argument(help=FILES_HELP)] = None,
) -> None:
    """Run mapping test files: each case's input must map to its expected output."""
    maps, tests = _split_files(files)
    tests = list(dict.fromkeys([*tests, *(companion_test_file(m) for m in maps if files)]))
    passed = failed = 0
    for path in tests:
        result = run_test_file(path)
        if result.issues:
            failed += 1
            _print_issues(result.issues)
            continue
        for case in result.cases:
            if case.ok:
                passed += 1
                out.print(f"[green]PASS[/] {path}:{case.line} {case.name}")
            else:
                failed += 1
                out.print(f"[red]FAIL[/] {path}:{case.line} {case.name}")
                for problem in case.problems:
                    out.print(f"     {problem}", soft_wrap=True)
    out.print(f"{passed} passed, {failed} failed")
    if failed or not passed:
        raise typer.Exit(1)


def _render(value: Any) -> str:
    if value is MISSING:
        return "[dim]—[/]"
    return json.dumps(to_jsonable(value), ensure_ascii=False, default=str)


@mappings_app.command("preview")
def mappings_preview(
    file: Annotated[Path, typer.Argument(help="mapping file")],
    entity: Annotated[str, typer.Option(help="canonical entity, e.g. customer")],
    input: Annotated[Path, typer.Option("--input", "-i", help="JSON file with one record (or a list)")],
    direction: Annotated[str, typer.Option(help="in: native → canonical; out: canonical → native")] = "in",
    as_json: Annotated[bool, typer.Option("--json", help="print the mapped record as JSON only")] = False,
) -> None:
    """Show, field by field, how a record maps (native → canonical, or back with --direction out)."""
    if direction not in ("in", "out"):
        err.print("--direction must be `in` or `out`")
        raise typer.Exit(2)
    mapping, issues = check_file(file)
    if mapping is None:
        _print_issues(issues)
        raise typer.Exit(1)
    if entity not in mapping.entities:
        err.print(f"{file} maps no entity {entity!r}; it maps: {', '.join(sorted(mapping.entities))}")
        raise typer.Exit(1)
    try:
        data = json.loads(input.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        err.print(f"cannot read {input}: {exc}")
        raise typer.Exit(1) from None
    records = data if isinstance(data, list) else [data]
    compiled = mapping.entities[entity]
    any_errors = False
    for n, record in enumerate(records):
        if not isinstance(record, dict):
            err.print(f"record {n}: expected a JSON object, got {type(record).__name__}")
            any_errors = True
            continue
        result, errors = compiled.map(record, direction)
        problems = validation_problems(entity, result) if direction == "in" and not errors else []
        any_errors = any_errors or bool(errors) or bool(problems)
        if as_json:
            out.print_json(data=to_jsonable(result))
            continue
        _preview_table(compiled.fields_for(direction), record, result, errors, direction, f"{entity} #{n + 1}")
        for path, msg in problems:
            out.print(f"[red]canonical {entity} invalid at {path}: {msg}[/]")
    if any_errors:
        raise typer.Exit(1)


def _preview_table(
    fields: list[Any],
    record: dict[str, Any],
    result: dict[str, Any],
    errors: list[FieldError],
    direction: str,
    title: str,
) -> None:
    arrow = "→"
    src_title, dst_title = ("native", "canonical") if direction == "in" else ("canonical", "native")
    table = Table(title=title, show_lines=False)
    for col in (src_title, "value", arrow, dst_title, "result"):
        table.add_column(col, overflow="fold")
    by_field: dict[str, list[FieldError]] = {}
    for e in errors:
        by_field.setdefault(e.field.split("[")[0], []).append(e)
    for f in fields:
        src = f.native_path if direction == "in" else f.canonical_path
        dst = f.canonical_path if direction == "in" else f.native_path
        try:
            before = get_path(record, src) if src is not None else MISSING
        except TypeError:
            before = MISSING
        try:
            after = get_path(result, dst) if dst is not None else MISSING
        except TypeError:
            after = MISSING
        steps = f.in_steps if direction == "in" else f.out_steps
        field_errors = by_field.get((f.canonical or "").split("[")[0], [])
        res = (
            "[red]" + "; ".join(f"{e.message} [{e.transform}]" for e in field_errors) + "[/]"
            if field_errors
            else _render(after)
        )
        table.add_row(
            format_path(src) if src else "(record)",
            _render(before),
            " | ".join(s.label for s in steps) or arrow,
            format_path(dst) if dst else "",
            res,
        )
    out.print(table)
    if errors:
        out.print(f"[red]{len(errors)} field error(s):[/]")
        for e in errors:
            out.print(f"  [red]{e}[/]", soft_wrap=True)


@mappings_app.command("schema")
def mappings_schema(
    test_file: Annotated[bool, typer.Option("--test-file", help="schema of .test.yaml files instead")] = False,
) -> None:
    """Print the JSON Schema of mapping files (for editors; see docs/mapping-files.md)."""
    model = MappingTestSpec if test_file else MappingSpec
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    sys.stdout.write(json.dumps(schema, indent=2, ensure_ascii=False) + "\n")


@mappings_app.command("docs")
def mappings_docs(
    output: Annotated[Path, typer.Option(help="where to write the transform reference")] = Path("docs/transforms.md"),
) -> None:
    """Regenerate the transform reference from the registered transforms and their examples."""
    from mappings.docs import render_transforms_md

    output.write_text(render_transforms_md(), encoding="utf-8")
    out.print(f"wrote {output}")


STORE_HELP = "state store URL (default: env SYNCHUB_STORE_URL, else the config file's [state].url)"


def _store_url(store: str | None) -> str:
    if store or os.environ.get("SYNCHUB_STORE_URL"):
        return store or os.environ["SYNCHUB_STORE_URL"]
    config_file = os.environ.get(ENV_CONFIG) or ("config.toml" if os.path.exists("config.toml") else None)
    if config_file:
        return load_config(config_file).state.url
    return "sqlite:///synchub.db"


def _open_store(store: str | None) -> Any:
    """The store a command names (``--store``, ``SYNCHUB_STORE_URL``), else the config file's, opened
    with its ``[state]`` tuning (a big store's page cache and memory map), else ./synchub.db."""
    from core.deployment import open_store
    from core.store.db import Store

    if store or os.environ.get("SYNCHUB_STORE_URL"):
        return Store(_store_url(store))
    config_file = os.environ.get(ENV_CONFIG) or ("config.toml" if os.path.exists("config.toml") else None)
    if config_file:
        return open_store(load_config(config_file))
    return Store(_store_url(None))


@app.callback()
def _global_options(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help=f"deployment config file (default: env {ENV_CONFIG}, else ./config.toml)"),
    ] = None,
) -> None:
    """synchub: keep a CRM and every system around it in step."""
    if config is not None:
        os.environ[ENV_CONFIG] = str(config)


@config_app.command("check")
def config_check(
    file: Annotated[
        Path | None, typer.Argument(help="config file (default: --config, env SYNCHUB_CONFIG, ./config.toml)")
    ] = None,
    connect: Annotated[
        bool, typer.Option("--connect", help="also try each system's credentials with one cheap call")
    ] = False,
) -> None:
    """Validate a config file and every mapping it names; every problem with file:line."""
    from core.deployment import build_connector, check_deployment, mapped_fields

    path = file or Path(os.environ.get(ENV_CONFIG) or "config.toml")
    try:
        config = load_config(path)
    except ConfigFileError as exc:
        for issue in exc.issues:
            err.print(f"[bold]{issue.file}:{issue.line or '?'}[/]: [red]{issue.key}[/] {issue.message}", soft_wrap=True)
        raise typer.Exit(1) from None
    checked = check_deployment(config)
    for problem in checked.problems:
        err.print(f"[bold]{problem.system}[/]: [red]{problem.message}[/]", soft_wrap=True)
    if checked.problems:
        raise typer.Exit(1)
    table = Table(title=f"{path}: {len(config.systems())} systems")
    for col in ("system", "kind", "mapping", "entities", "connection"):
        table.add_column(col, overflow="fold")
    failed = 0
    for name, settings in config.systems().items():
        flows = settings.entities or dict.fromkeys(checked.mappings[name].entities, "both")
        status = "not tried"
        if connect:
            try:
                connector = build_connector(name, settings)
                try:
                    connector.check(mapped_fields(checked.mappings[name], flows))
                finally:
                    connector.close()
                status = "[green]ok[/]"
            except Exception as exc:  # report every system, then fail
                failed += 1
                status = f"[red]{type(exc).__name__}: {exc}[/]"
        role = " (hub)" if name == config.hub_name else ""
        table.add_row(
            name + role, settings.kind, str(settings.mapping), ", ".join(f"{e}:{f}" for e, f in flows.items()), status
        )
    out.print(table)
    if failed:
        raise typer.Exit(1)
    out.print("config ok")


@app.command("trace")
def trace_command(
    entity: Annotated[str, typer.Argument(help="canonical entity, e.g. customer")],
    key: Annotated[str, typer.Argument(help="canonical id, any system's id, email, phone or loyalty id")],
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
) -> None:
    """Explain a record: its golden values, every system's id, and where each field came from."""
    from core.sync.trace import trace

    records = trace(_open_store(store), entity, key)
    if not records:
        err.print(f"no {entity} matches {key!r}")
        raise typer.Exit(1)
    for rec in records:
        out.print(f"[bold]{entity} {rec.canonical_id}[/]  state={rec.state}  version={rec.version}")
        ids = Table(title="native ids", show_header=True)
        ids.add_column("system")
        ids.add_column("id")
        for system, nid in sorted(rec.native_ids.items()):
            ids.add_row(system, nid)
        out.print(ids)
        fields = Table(title="fields and provenance")
        for col in ("field", "value", "from", "when", "rule", "changes", "trace"):
            fields.add_column(col, overflow="fold")
        for f in rec.fields:
            fields.add_row(
                f.field,
                _render(f.value),
                f.source_system,
                f.source_ts.isoformat() if f.source_ts else "",
                f.rule,
                str(f.changes),
                f.trace_id[:12],
            )
        out.print(fields)
        if rec.conflicts:
            table = Table(title="conflicts")
            for col in ("field", "system", "hub value", "incoming", "rule", "kept", "status"):
                table.add_column(col, overflow="fold")
            for c in rec.conflicts:
                table.add_row(
                    c["field"],
                    c["system"],
                    _render(c["hub_value"]),
                    _render(c["incoming_value"]),
                    c["rule"],
                    c["outcome"],
                    c["status"],
                )
            out.print(table)


def main() -> None:
    app()
