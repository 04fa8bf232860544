"""The SOQL subset the emulator understands: a tokenizer, a recursive-descent parser and an
evaluator over in-memory records.

Parsing for real (rather than matching patterns) is the point: a quote smuggled into a string
literal either ends the literal — and what follows must still parse, so ``O'Brien' OR Name LIKE '%``
is a MALFORMED_QUERY — or, escaped as ``\\'``, stays part of the value. Nothing can widen a query.

Supported (SOQL and SOSL Reference):
- ``SELECT f, … [ , (SELECT … FROM ChildRelationship …) ] FROM Object [WHERE …] [ORDER BY f [ASC|DESC]
  [NULLS FIRST|LAST], …] [LIMIT n] [OFFSET n]``
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select.htm
- conditions ``= != <> < <= > >= IN NOT IN LIKE``, ``AND``/``OR``/``NOT`` and parentheses; AND and OR
  cannot be mixed without parentheses (the reference's "conditionExpression" rule)
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_conditionexpression.htm
- string comparisons (``=``, ``IN``, ``LIKE``, ranges) are case-insensitive on the fields the emulator
  has (none is a case-sensitive unique field); ``%`` and ``_`` are LIKE's wildcards, ``\\%`` ``\\_``
  literal; IN takes a parenthesised list
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_comparisonoperators.htm
- a literal must be of the field's type (dates and dateTimes unquoted, text quoted), else INVALID_FIELD
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_fieldexpression.htm
- ORDER BY: ascending by default, nulls first by default, case-insensitive; LIMIT and OFFSET
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_orderby.htm
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_limit.htm
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_offset.htm
- string literals in single quotes with backslash escapes
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm
- date and dateTime literals, unquoted (``2026-11-20``, ``2026-11-20T09:15:00Z``, ``…+01:00``)
  https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any


class SoqlError(Exception):
    """A query Salesforce would refuse; ``code`` is its errorCode (MALFORMED_QUERY, INVALID_FIELD…)."""

    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.code = code


_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2})(?![\dT])
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),])
  | (?P<quote>')
    """,
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
KEYWORDS = {
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
    "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "TRUE", "FALSE", "NULL", "COUNT",
}  # fmt: skip


@dataclass(frozen=True)
class Token:
    kind: str  # kw, ident, string, number, datetime, date, op, punct, eof
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i = 0
    while i < len(text):
        m = _TOKEN.match(text, i)
        if m is None:
            raise SoqlError(f"unexpected character {text[i]!r} at position {i}")
        kind = m.lastgroup or ""
        if kind == "quote":
            value, i = _string(text, i + 1)
            tokens.append(Token("string", value, m.start()))
            continue
        i = m.end()
        if kind == "ws":
            continue
        raw = m.group()
        if kind == "ident" and raw.upper() in KEYWORDS:
            tokens.append(Token("kw", raw.upper(), m.start()))
        elif kind == "number":
            tokens.append(Token("number", float(raw) if "." in raw else int(raw), m.start()))
        elif kind == "datetime":
            tokens.append(Token("datetime", _parse_datetime(raw), m.start()))
        elif kind == "date":
            tokens.append(Token("date", date.fromisoformat(raw), m.start()))
        else:
            tokens.append(Token(kind, raw, m.start()))
    tokens.append(Token("eof", None, len(text)))
    return tokens


def _string(text: str, i: int) -> tuple[str, int]:
    out: list[str] = []
    while i < len(text):
        ch = text[i]
        if ch == "'":
            return "".join(out), i + 1
        if ch == "\\":
            nxt = text[i + 1 : i + 2]
            if nxt in _ESCAPES:
                out.append(_ESCAPES[nxt])
            elif nxt in ("%", "_"):  # kept escaped: they are literal only inside LIKE
                out.append("\\" + nxt)
            else:
                raise SoqlError(f"invalid escape sequence \\{nxt} at position {i}")
            i += 2
            continue
        out.append(ch)
        i += 1
    raise SoqlError("unterminated string literal")


def _parse_datetime(raw: str) -> datetime:
    text = raw.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text).astimezone(UTC)


def parse_record_datetime(value: str) -> datetime:
    """A dateTime as the API returns it: ``2026-11-20T09:15:00.000+0000``."""
    return _parse_datetime(value)


# --- the tree --------------------------------------------------------------------------------------


@dataclass
class Cond:
    field: str
    op: str  # = != < <= > >= IN NOTIN LIKE
    value: Any
    kind: str  # literal kind: string, number, datetime, date, bool, null, list


@dataclass
class BoolExpr:
    op: str  # AND, OR, NOT
    parts: list[Any]


@dataclass
class Query:
    fields: list[str]
    obj: str
    where: Any = None
    order: list[tuple[str, bool, bool]] = field(default_factory=list)  # (field, descending, nulls_last)
    limit: int | None = None
    offset: int = 0
    subqueries: list[Query] = field(default_factory=list)
    count: bool = False


class Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def take(self, kind: str, value: Any = None) -> Token:
        t = self.tok
        if t.kind != kind or (value is not None and t.value != value):
            want = value or kind
            got = t.value if t.kind != "eof" else "end of query"
            raise SoqlError(f"unexpected token: {got!r} at position {t.pos}, expecting {want}")
        self.i += 1
        return t

    def accept(self, kind: str, value: Any = None) -> bool:
        if self.tok.kind == kind and (value is None or self.tok.value == value):
            self.i += 1
            return True
        return False

    def query(self, *, nested: bool = False) -> Query:
        self.take("kw", "SELECT")
        fields: list[str] = []
        subs: list[Query] = []
        count = False
        while True:
            if self.accept("kw", "COUNT"):
                self.take("punct", "(")
                self.take("punct", ")")
                count = True
            elif not nested and self.accept("punct", "("):
                subs.append(self.query(nested=True))
                self.take("punct", ")")
            else:
                fields.append(self.take("ident").value)
            if not self.accept("punct", ","):
                break
        self.take("kw", "FROM")
        q = Query(fields, self.object_name(), subqueries=subs, count=count)
        if self.accept("kw", "WHERE"):
            q.where = self.expr()
        if self.accept("kw", "ORDER"):
            self.take("kw", "BY")
            while True:
                name = self.take("ident").value
                desc = self.accept("kw", "DESC") or (self.accept("kw", "ASC") and False)
                # "By default, null values are sorted first" (either direction), case-insensitively:
                # https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_orderby.htm
                nulls_last = False
                if self.accept("kw", "NULLS"):
                    nulls_last = self.accept("kw", "LAST") or not self.take("kw", "FIRST")
                q.order.append((name, desc, nulls_last))
                if not self.accept("punct", ","):
                    break
        if self.accept("kw", "LIMIT"):
            q.limit = int(self.take("number").value)
        if self.accept("kw", "OFFSET"):
            q.offset = int(self.take("number").value)
        if not nested:
            self.take("eof")
        return q

    def object_name(self) -> str:
        """After FROM a reserved word is a name: ``SELECT Id FROM Order`` is valid SOQL."""
        t = self.tok
        if t.kind == "kw" and t.value == "ORDER":
            self.i += 1
            return "Order"
        return str(self.take("ident").value)

    def expr(self) -> Any:
        first = self.factor()
        if self.tok.kind == "kw" and self.tok.value in ("AND", "OR"):
            op = self.tok.value
            parts = [first]
            while self.accept("kw", op):
                parts.append(self.factor())
            if self.tok.kind == "kw" and self.tok.value in ("AND", "OR"):
                raise SoqlError(f"unexpected token: {self.tok.value!r} at position {self.tok.pos}: use parentheses")
            return BoolExpr(op, parts)
        return first

    def factor(self) -> Any:
        if self.accept("kw", "NOT"):
            return BoolExpr("NOT", [self.factor()])
        if self.accept("punct", "("):
            inner = self.expr()
            self.take("punct", ")")
            return inner
        name = self.take("ident").value
        if self.accept("kw", "NOT"):
            self.take("kw", "IN")
            return Cond(name, "NOTIN", *self.value_list())
        if self.accept("kw", "IN"):
            return Cond(name, "IN", *self.value_list())
        if self.accept("kw", "LIKE"):
            return Cond(name, "LIKE", self.take("string").value, "string")
        op = self.take("op").value
        value, kind = self.value()
        return Cond(name, "!=" if op == "<>" else op, value, kind)

    def value_list(self) -> tuple[list[Any], str]:
        self.take("punct", "(")
        values: list[Any] = []
        kinds: set[str] = set()
        while True:
            v, k = self.value()
            values.append(v)
            kinds.add(k)
            if not self.accept("punct", ","):
                break
        self.take("punct", ")")
        return values, (kinds.pop() if len(kinds) == 1 else "mixed")

    def value(self) -> tuple[Any, str]:
        t = self.tok
        if t.kind in ("string", "number", "datetime", "date"):
            self.i += 1
            value = t.value
            if t.kind == "string":
                value = re.sub(r"\\([%_])", r"\1", value)  # outside LIKE, \% and \_ are plain
            return value, t.kind
        if t.kind == "kw" and t.value in ("TRUE", "FALSE"):
            self.i += 1
            return t.value == "TRUE", "bool"
        if t.kind == "kw" and t.value == "NULL":
            self.i += 1
            return None, "null"
        raise SoqlError(f"unexpected token: {t.value!r} at position {t.pos}, expecting a literal")


def parse(text: str) -> Query:
    return Parser(text).query()


# --- evaluation ------------------------------------------------------------------------------------


def _like(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _comparable(value: Any, kind: str, ftype: str) -> Any:
    if value is None:
        return None
    if ftype == "datetime" and isinstance(value, str):
        return parse_record_datetime(value)
    if ftype == "date" and isinstance(value, str):
        return date.fromisoformat(value[:10])
    if isinstance(value, str) and ftype not in ("id", "reference"):
        return value.lower()
    return value


def check_types(cond: Cond, ftype: str) -> None:
    """Salesforce refuses a literal of the wrong kind rather than coercing it."""
    kind = cond.kind
    if kind in ("null", "mixed"):
        return
    if ftype == "datetime" and kind != "datetime":
        raise SoqlError(
            f"value of filter criterion for field '{cond.field}' must be of type dateTime and should not be "
            "enclosed in quotes",
            "INVALID_FIELD",
        )
    if ftype == "date" and kind != "date":
        raise SoqlError(
            f"value of filter criterion for field '{cond.field}' must be of type date and should not be "
            "enclosed in quotes",
            "INVALID_FIELD",
        )
    textual = ftype not in ("datetime", "date", "boolean", "double", "currency", "int", "percent")
    if textual and kind != "string":
        raise SoqlError(
            f"value of filter criterion for field '{cond.field}' must be of type string and should be enclosed "
            "in quotes",
            "INVALID_FIELD",
        )


def matches(expr: Any, record: dict[str, Any], types: dict[str, str]) -> bool:
    if expr is None:
        return True
    if isinstance(expr, BoolExpr):
        if expr.op == "NOT":
            return not matches(expr.parts[0], record, types)
        results = (matches(p, record, types) for p in expr.parts)
        return all(results) if expr.op == "AND" else any(results)
    ftype = types[expr.field]
    have = _comparable(record.get(expr.field), "", ftype)
    if expr.op == "LIKE":
        return have is not None and _like(expr.value).fullmatch(str(record.get(expr.field))) is not None
    if expr.op in ("IN", "NOTIN"):
        wanted = [_literal(v, ftype) for v in expr.value]
        found = have in wanted
        return found if expr.op == "IN" else not found
    want = _literal(expr.value, ftype)
    if expr.op == "=":
        return bool(have == want)
    if expr.op == "!=":
        return bool(have != want)
    if have is None or want is None:
        return False
    ops = {"<": have < want, "<=": have <= want, ">": have > want, ">=": have >= want}
    return bool(ops[expr.op])


def _literal(value: Any, ftype: str) -> Any:
    if isinstance(value, str) and ftype not in ("id", "reference"):
        return value.lower()
    return value


def sort_key(record: dict[str, Any], order: list[tuple[str, bool, bool]], types: dict[str, str]) -> tuple[Any, ...]:
    """A key for ``sorted`` honouring ASC/DESC and NULLS FIRST/LAST per column (applied column by column)."""
    key: list[Any] = []
    for name, desc, nulls_last in order:
        value = _comparable(record.get(name), "", types[name])
        is_null = value is None
        key.append(_Ordered(is_null, value, desc, nulls_last))
    return tuple(key)


@dataclass
class _Ordered:
    null: bool
    value: Any
    desc: bool
    nulls_last: bool

    def __lt__(self, other: _Ordered) -> bool:
        if self.null and other.null:
            return False
        if self.null:
            return not self.nulls_last
        if other.null:
            return self.nulls_last
        if self.value == other.value:
            return False
        return bool(self.value > other.value) if self.desc else bool(self.value < other.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ordered) and self.null == other.null and self.value == other.value
