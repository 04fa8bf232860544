"""Hot statements run on the DBAPI cursor, with SQLAlchemy's own compiled SQL and type processing.

Why: the pipeline runs ~15 small statements per change. Through ``Connection.execute`` each one
costs 60–100 µs of SQLAlchemy bookkeeping (cache key, execution context, events, result set-up) on
top of ~10–20 µs in SQLite itself — most of a change's cost. A :class:`FastStatement` compiles its
statement once per dialect (the very SQL SQLAlchemy would send, bind casts included), keeps the
bind and result processors of its columns (JSON codec, UTC datetimes), and then only converts
parameters, calls the cursor and converts the row. It runs on the connection's DBAPI connection, so
it takes part in the caller's transaction (and savepoint) like any other statement.

Only plain statements with named bind parameters: no expanding ``IN``, no Python-side column
defaults (every inserted column is given). Anything else stays on ``Connection.execute``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, DateTime, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement

_REQUIRED: Any = object()


class _Prepared(NamedTuple):
    sql: str
    positional: tuple[str, ...] | None  # parameter order for qmark/format styles; None: named
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]  # name, preset value, processor
    row: Callable[[Sequence[Any]], Any] | None
    returns: bool
    build: Callable[[Mapping[str, Any]], Any]  # the DBAPI parameters from the caller's mapping


def _compile(source: str, namespace: dict[str, Any]) -> Callable[..., Any]:
    """A small function from generated source: one expression per column or parameter, no loop.

    Why generated: a change runs ~20 statements, each binding ~8 parameters and converting a row;
    the interpreted loop over (name, preset, processor) was a tenth of a change's CPU."""
    exec(compile(source, "<core.store.fast>", "exec"), namespace)  # noqa: S102 - our own generated code
    return namespace["fn"]  # type: ignore[no-any-return]


def _param_builder(
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...], positional: bool
) -> Callable[[Mapping[str, Any]], Any]:
    namespace: dict[str, Any] = {}
    exprs: list[str] = []
    for i, (name, preset, fn) in enumerate(binds):
        if preset is _REQUIRED:
            expr = f"p[{name!r}]"
        else:
            namespace[f"d{i}"] = preset
            expr = f"p.get({name!r}, d{i})"
        if fn is not None:
            namespace[f"f{i}"] = fn
            expr = f"f{i}({expr})"
        exprs.append(expr)
    if positional:
        body = "[" + ", ".join(exprs) + "]"
    else:
        body = "{" + ", ".join(f"{name!r}: {e}" for (name, _, _), e in zip(binds, exprs, strict=True)) + "}"
    return _compile(f"def fn(p):\n    return {body}\n", namespace)


def _memo(fn: Callable[[Any], Any] | None, type_: Any) -> Callable[[Any], Any] | None:
    """Datetime binds remember their last conversion: one change binds the same ``now`` a dozen times."""
    if fn is None or not isinstance(type_, DateTime | TypeDecorator):
        return fn
    last: list[tuple[Any, Any]] = [(_REQUIRED, None)]  # one tuple, swapped whole: safe across threads

    def convert(value: Any) -> Any:
        seen, out = last[0]
        if value is seen:
            return out
        out = fn(value)
        last[0] = (value, out)
        return out

    return convert


class FastStatement:
    """One statement, prepared per dialect on first use; ``run``/``one``/``all``/``many`` execute it."""

    __slots__ = ("_prepared", "column_keys", "stmt")

    def __init__(self, stmt: ClauseElement, column_keys: Iterable[str] | None = None) -> None:
        self.stmt = stmt
        self.column_keys = list(column_keys) if column_keys is not None else None
        self._prepared: dict[str, _Prepared] = {}

    def _prepare(self, dialect: Dialect) -> _Prepared:
        compiled: Any = self.stmt.compile(dialect=dialect, column_keys=self.column_keys)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("FastStatement cannot run an expanding IN; spell the values out")
        processors = compiled._bind_processors
        positional = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        order = positional if positional is not None else tuple(compiled.binds)
        binds = tuple(
            (name, self._preset(compiled.binds[name]), _memo(processors.get(name), compiled.binds[name].type))
            for name in order
        )
        row = None
        columns = getattr(compiled, "_result_columns", None) or []
        if columns:
            keys = [c.keyname for c in columns]
            convert = [c.type._cached_result_processor(dialect, None) for c in columns]
            tuple_type = NamedTuple("Row", [(k, Any) for k in keys])  # type: ignore[misc]
            if any(convert):
                namespace: dict[str, Any] = {"T": tuple_type}
                for i, fn in enumerate(convert):
                    if fn is not None:
                        namespace[f"c{i}"] = fn
                args = ", ".join(f"raw[{i}]" if fn is None else f"c{i}(raw[{i}])" for i, fn in enumerate(convert))
                row = _compile(f"def fn(raw):\n    return T({args})\n", namespace)
            else:

                def row(raw: Sequence[Any]) -> Any:
                    return tuple_type(*raw)

        build = _param_builder(binds, positional is not None)
        prepared = _Prepared(compiled.string, positional, binds, row, bool(columns), build)
        self._prepared[dialect.name] = prepared
        return prepared

    @staticmethod
    def _preset(bind: Any) -> Any:
        """A literal of the statement (``status="done"``) keeps its value; a named parameter must be given."""
        if bind.required or bind.callable is not None:
            return _REQUIRED
        return bind.value

    def _cursor(self, conn: Connection) -> tuple[Any, _Prepared]:
        dialect = conn.dialect
        p = self._prepared.get(dialect.name) or self._prepare(dialect)
        return conn.connection.cursor(), p

    def _execute(self, conn: Connection, params: Any, fetch: str) -> Any:
        cur, p = self._cursor(conn)
        try:
            if fetch == "many":
                cur.executemany(p.sql, [p.build(r) for r in params])
                return None
            cur.execute(p.sql, p.build(params))
            if fetch == "rowcount":
                return int(cur.rowcount)
            if fetch == "one":
                raw = cur.fetchone()
                return raw if raw is None or p.row is None else p.row(raw)
            rows = cur.fetchall()
            return rows if p.row is None else [p.row(r) for r in rows]
        except conn.dialect.loaded_dbapi.Error as exc:
            # the same exception types as Connection.execute raises (IntegrityError, OperationalError…)
            raise DBAPIError.instance(p.sql, None, exc, conn.dialect.loaded_dbapi.Error) from exc
        except KeyError as exc:  # only the parameter builder looks names up
            raise KeyError(f"parameter {exc.args[0]!r} not given") from None
        finally:
            cur.close()

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        """Execute a write; returns the number of rows it touched."""
        return int(self._execute(conn, params, "rowcount"))

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """Execute a write once per parameter set, in one DBAPI ``executemany``."""
        if rows:
            self._execute(conn, rows, "many")

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Execute a query (or a write with RETURNING); every row, converted."""
        return list(self._execute(conn, params, "all"))

    def one(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The first row, or None."""
        return self._execute(conn, params, "one")
