"""Growth: does an incremental sync cost what changed, or what is stored? And a streamed backfill.

Part 1 — incremental sync over a pre-synced store. The store is built quickly but realistically:
one customer is synced through the real pipeline (created in the shop, written to the CRM, edited
once), and its rows in every table — golden record, cross-references, identity keys, sync bases,
field history, done outbox rows — are cloned N times with that customer's id, e-mail, phone and
native ids replaced (bulk inserts into the same tables and indexes, then ANALYZE as a deployment
would have). The memory connectors hold only the customers that will change (the rest exist in
the store alone: the pipeline only ever reads what changed), at their synced state. Then rounds of
1,000 shop edits (note and city) are synced to quiescence — poll, merge, CRM write, CRM echo — and
timed. The goal is a flat line: the same time at 10k, 100k and 1M stored customers.

Part 2 — backfill: N customers read from a source that generates them page by page (nothing held
in memory) and written to a CRM sink that keeps only counts, one page at a time — poll a page,
flush the CRM — so the whole run is streamed; peak RSS is the process's ``ru_maxrss``.

SQLite only (the embedded default, and the store whose growth was measured as a problem).

    uv run python bench/growth.py                                   # 10k and 100k stored, 100k backfill
    uv run python bench/growth.py --sizes 10000,100000,1000000 --backfill 1000000 --write-docs
    uv run python bench/growth.py --sizes 1000000 --backfill 0 --store-dir /tmp/growth-stores --profile
    uv run python bench/growth.py --sizes 1000000 --backfill 0 --store-dir /tmp/growth-stores --sqlite 1024,2048

``--store-dir`` keeps each built store and starts later runs from a copy (the 1M build takes ~10
minutes); ``--profile`` adds each statement's count, query plan and pages per run; ``--sqlite``
runs the rounds with another ``[state]`` page cache and memory map. ``--write-docs`` keeps what
each part last measured in bench/growth-results.json, so a backfill-only run keeps the incremental
table and the other way round.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import re
import resource
import shlex
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402

from bench._docs import replace_section  # noqa: E402
from bench.pipeline import CITIES, MAPPINGS, build, customer, machine, quiet_logs  # noqa: E402
from connectors.memory import EXTERNAL_ID, _Row  # noqa: E402
from core.connector import ChangePage, Connector, NativeRecord, RateLimit, WriteRequest, WriteResult  # noqa: E402
from core.store.db import SqliteTuning, Store  # noqa: E402
from core.sync.pipeline import Pipeline  # noqa: E402
from core.sync.systems import System, Systems  # noqa: E402
from mappings.loader import load_mapping  # noqa: E402

CHANGED = 1000
TEMPLATE_PHONE = "600000000"  # customer(0)'s phone digits, in every form the tables hold it
# tables cloned per customer; the autoincrement id is left to the database
TABLES = ["golden", "xref", "identity_keys", "sync_base", "field_history", "outbox"]
AUTO_ID = {"xref", "field_history", "outbox"}


def _template(pipeline: Pipeline, conns: dict[str, Any], path: str) -> tuple[str, dict[str, list[tuple[Any, ...]]]]:
    """Sync customer 0 through the real pipeline (create, then one edit); its rows in every table."""
    shop = conns["shop"].system
    nid = shop.put("customer", customer(0, random.Random(0)))
    pipeline.drain()
    shop.edit("customer", nid, note="edit 0", address={"city": CITIES[1]})
    pipeline.drain()
    db = sqlite3.connect(path)
    (cid,) = db.execute("SELECT id FROM golden").fetchone()
    rows: dict[str, list[tuple[Any, ...]]] = {}
    for table in TABLES:
        cols = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        keep = [c for c in cols if not (table in AUTO_ID and c == "id")]
        key = "id" if table == "golden" else "canonical_id"
        found = db.execute(f"SELECT {', '.join(keep)} FROM {table} WHERE {key} = ?", (cid,)).fetchall()
        rows[table] = [tuple(r) for r in found]
        rows[f"{table}:cols"] = [tuple(keep)]
    db.close()
    return cid, rows


def _clone_id(i: int) -> str:
    return str(uuid.UUID(int=random.Random(i).getrandbits(128), version=4))


def _fill(path: str, template_cid: str, rows: dict[str, list[tuple[Any, ...]]], size: int) -> float:
    """Clone the template customer into customers 1..size-1 with bulk inserts; seconds taken."""
    t0 = time.perf_counter()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    chunk = 20_000
    for start in range(1, size, chunk):
        batches: dict[str, list[tuple[Any, ...]]] = {t: [] for t in TABLES}
        for i in range(start, min(start + chunk, size)):
            cid, email, phone, native = _clone_id(i), f"customer{i}@", f"6{i:08d}", str(i + 1)
            for table in TABLES:
                cols = rows[f"{table}:cols"][0]
                for row in rows[table]:
                    out = []
                    for col, v in zip(cols, row, strict=True):
                        if col == "native_id":
                            v = native
                        elif isinstance(v, str):
                            v = v.replace(template_cid, cid).replace("customer0@", email).replace(TEMPLATE_PHONE, phone)
                        out.append(v)
                    batches[table].append(tuple(out))
        for table, batch in batches.items():
            cols = rows[f"{table}:cols"][0]
            marks = ", ".join("?" for _ in cols)
            db.executemany(f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})", batch)
    db.execute("COMMIT")
    db.execute("ANALYZE")
    db.close()
    return time.perf_counter() - t0


def _expose(conns: dict[str, Any], targets: list[int]) -> None:
    """Put the customers that will change into the memory systems, as synced, and move past them."""
    shop, crm = conns["shop"].system, conns["crm"].system
    for i in targets:
        native, cid = str(i + 1), _clone_id(i)
        data = {**customer(i, random.Random(0)), "note": "edit 0", "address": {"city": CITIES[1]}}
        data = {**data, "email": f"customer{i}@example.pl", "phone": f"+48 6{i:08d}"}
        stamp = datetime.now(UTC).isoformat()
        shop.table("customer")[native] = _Row(native, {**data, "id": native, "updated_at": stamp}, next(shop.seq))
        crm_data = {"email": data["email"], "phone": f"+486{i:08d}", "city": CITIES[1], "note": "edit 0"}
        crm.table("customer")[native] = _Row(
            native, {**crm_data, "id": native, EXTERNAL_ID: cid, "updated_at": stamp}, next(crm.seq)
        )
        crm.by_external_id.setdefault("customer", {})[cid] = native


def _pages_of(dbapi_conn: sqlite3.Connection, path: str) -> tuple[int, int] | None:
    """(pages visited, pages missed) so far on one connection: ``sqlite3_db_status`` cache hits and
    misses, which the sqlite3 module does not expose. Pages visited count the work of every B-tree
    descent and do not move with the other processes on the machine, as times do. The ``sqlite3 *``
    is read from the connection object (the field after the object header) and trusted only if
    SQLite then names the very file that connection opened; otherwise None, and no count is shown."""
    try:
        import _sqlite3
        import ctypes

        lib = ctypes.CDLL(_sqlite3.__file__)
        handle = ctypes.c_void_p.from_address(id(dbapi_conn) + object.__basicsize__)
        lib.sqlite3_db_filename.restype = ctypes.c_char_p
        lib.sqlite3_db_filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        if lib.sqlite3_db_filename(handle, b"main") != str(Path(path).resolve()).encode():
            return None
        count = ctypes.POINTER(ctypes.c_int)
        lib.sqlite3_db_status.argtypes = [ctypes.c_void_p, ctypes.c_int, count, count, ctypes.c_int]
        out = []
        for op in (7, 8):  # SQLITE_DBSTATUS_CACHE_HIT, SQLITE_DBSTATUS_CACHE_MISS
            cur, high = ctypes.c_int(), ctypes.c_int()
            if lib.sqlite3_db_status(handle, op, ctypes.byref(cur), ctypes.byref(high), 0) != 0:
                return None
            out.append(cur.value)
    except (ImportError, OSError, AttributeError, ValueError):
        return None
    return out[0] + out[1], out[1]


def _kept(store_dir: str | None, size: int) -> Path | None:
    return Path(store_dir) / f"growth-{size}.db" if store_dir else None


_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+(?:\.\d+)?\b")


def _statement_profile(path: str, seen: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Each statement a round ran, by shape: how often, its query plan, and the B-tree pages one run
    of it visits, replayed on a connection of its own without the memory map (so every page is
    counted) inside a transaction that is rolled back; it is run once before, to count a warm run.
    The replay is the traced SQL, the round's values written in: where one value repeats in every
    term of an OR, SQLite can plan that text differently from the bound statement, so such a row
    wants checking with parameters (none of the incremental round's statements is one)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA cache_size=-65536")
    out = []
    for shape, (count, sql) in seen.items():
        if not shape.upper().startswith(("SELECT", "UPDATE", "DELETE", "INSERT")):
            continue
        plan = [row[-1] for row in db.execute("EXPLAIN QUERY PLAN " + sql)]
        pages = None
        try:
            db.execute("BEGIN")
            db.execute(sql).fetchall()
            db.execute("ROLLBACK")
            db.execute("BEGIN")
            before = _pages_of(db, path)
            db.execute(sql).fetchall()
            after = _pages_of(db, path)
            pages = after[0] - before[0] if before and after else None
        except sqlite3.IntegrityError:
            pass  # an insert whose row the round itself then wrote: its plan is still shown
        finally:
            db.execute("ROLLBACK")
        out.append({"sql": shape, "per_round": count, "pages": pages, "plan": plan})
    db.close()
    return sorted(out, key=lambda r: -(r["per_round"] * (r["pages"] or 0)))


def incremental(
    size: int,
    rounds: int,
    seed: int,
    store_dir: str | None = None,
    profile: bool = False,
    tuning: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """One store size's rounds. With ``store_dir`` the freshly built store (before any round) is
    kept there as ``growth-<size>.db`` and copied from it on later runs: building 1M takes ~9 min,
    copying it under a minute, and every run still starts from the same untouched store. With
    ``profile`` one more, untimed round records every statement it runs (see _statement_profile).
    ``tuning`` (page cache MiB, memory map MiB) is the store's ``[state]`` SQLite tuning for the
    timed rounds; the store's defaults without it."""
    quiet_logs()
    tmp = tempfile.mkdtemp(prefix="synchub-growth-")
    path = f"{tmp}/state.db"
    pipeline, conns = build(f"sqlite:///{path}")
    template_cid, rows = _template(pipeline, conns, path)
    pipeline.store.close()
    kept = _kept(store_dir, size)
    if kept is not None and kept.exists():
        # the template run gave the memory systems their state; the kept store replaces its file
        # (its customer 0 has another canonical id, and customer 0 is never changed)
        for f in Path(tmp).glob("state.db*"):
            f.unlink()
        shutil.copyfile(kept, path)
        fill_s = float(json.loads(kept.with_suffix(".json").read_text())["fill_s"])
    else:
        fill_s = _fill(path, template_cid, rows, size)
        if kept is not None:
            kept.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, f"{kept}.part")
            Path(f"{kept}.part").replace(kept)
            kept.with_suffix(".json").write_text(json.dumps({"fill_s": fill_s}))
    cache_mb, mmap_mb = tuning or (SqliteTuning().cache_mb, SqliteTuning().mmap_mb)
    pipeline, conns2 = build(f"sqlite:///{path}", SqliteTuning(cache_mb=cache_mb, mmap_mb=mmap_mb))
    opened: list[Any] = []
    event.listen(pipeline.store.engine, "connect", lambda dbapi_conn, _rec: opened.append(dbapi_conn))
    pipeline.store.engine.dispose()  # the connection the migration check opened is not counted

    def pages() -> tuple[int, int] | None:
        counts = [_pages_of(c, path) for c in opened]
        if not counts or None in counts:
            return None
        return sum(c[0] for c in counts if c), sum(c[1] for c in counts if c)

    # the systems keep their state (ids, sequences) from the template run
    for name, conn in conns2.items():
        conn.system = conns[name].system
    rng = random.Random(seed)
    targets = rng.sample(range(1, size), CHANGED * (rounds + profile))
    _expose(conns2, targets)
    for c in conns2.values():
        with pipeline.store.begin() as db:
            from sqlalchemy import update

            from core.store.schema import cursors

            last = max((r.seq for r in c.system.table("customer").values()), default=0)
            db.execute(update(cursors).where(cursors.c.system == c.name).values(value=str(last)))
    shop = conns2["shop"].system
    walls, cpus, visited, missed = [], [], [], []
    for r in range(rounds):
        for n, i in enumerate(targets[r * CHANGED : (r + 1) * CHANGED]):
            shop.edit("customer", str(i + 1), note=f"edit {r}.{n}", address={"city": rng.choice(CITIES)})
        p0 = pages()
        c0, t0 = time.process_time(), time.perf_counter()
        pipeline.drain()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
        p1 = pages()
        if p0 is not None and p1 is not None:
            visited.append((p1[0] - p0[0]) / CHANGED)
            missed.append((p1[1] - p0[1]) / CHANGED)
    statements = None
    if profile:
        seen: dict[str, list[Any]] = {}

        def trace(sql: str) -> None:
            shape = re.sub(r"\?(?:, \?)+", "?, ...", _LITERAL.sub("?", " ".join(sql.split())))
            seen.setdefault(shape, [0, sql])[0] += 1

        for c in opened:
            c.set_trace_callback(trace)
        for n, i in enumerate(targets[rounds * CHANGED :]):
            shop.edit("customer", str(i + 1), note=f"edit p.{n}", address={"city": rng.choice(CITIES)})
        pipeline.drain()
        for c in opened:
            c.set_trace_callback(None)
        statements = _statement_profile(path, seen)
    with pipeline.store.begin() as db:
        from sqlalchemy import func, select

        from core.store.schema import golden

        stored = int(db.execute(select(func.count()).select_from(golden)).scalar())
    pipeline.store.close()
    db_mb = sum(f.stat().st_size for f in Path(tmp).glob("state.db*")) / 2**20
    shutil.rmtree(tmp)
    counted = {}
    if visited:
        counted = {"pages": round(statistics.median(visited)), "misses": round(statistics.median(missed), 1)}
    return {
        "stored": stored,
        "cache_mb": cache_mb,
        "mmap_mb": mmap_mb,
        "changed": CHANGED,
        "rounds": rounds,
        "fill_s": round(fill_s, 1),
        "db_mb": round(db_mb),
        "wall_s": round(statistics.median(walls), 3),
        "cpu_s": round(statistics.median(cpus), 3),
        "changes_per_s": round(CHANGED / statistics.median(walls)),
        "crm_writes": conns2["crm"].calls,
        **counted,
        **({"statements": statements} if statements is not None else {}),
    }


class _Source(Connector):
    """A shop that generates customers page by page from the cursor: nothing is kept in memory."""

    kind: ClassVar[str] = "bench-source"
    batch_size: ClassVar[int] = 500
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=1000, per_seconds=1.0)
    entities: ClassVar[tuple[str, ...]] = ("customer",)

    def __init__(self, name: str, total: int) -> None:
        super().__init__(name, {})
        self.total = total
        self.rng = random.Random(1)

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        self.calls += 1
        start = int(cursor or 0)
        end = min(start + limit, self.total)
        stamp = datetime.now(UTC)
        records = []
        for i in range(start, end):
            data = {**customer(i, self.rng), "id": str(i + 1), "updated_at": stamp.isoformat()}
            records.append(NativeRecord(str(i + 1), data, False, stamp))
        return ChangePage(records, str(end), more=end < self.total)

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        self.calls += 1
        return [WriteResult(native_id=r.native_id) for r in batch]


class _Sink(Connector):
    """A CRM that accepts every write, hands out native ids, and remembers only how many it took."""

    kind: ClassVar[str] = "bench-sink"
    batch_size: ClassVar[int] = 200
    rate_limit: ClassVar[RateLimit] = RateLimit(calls=1000, per_seconds=1.0)
    entities: ClassVar[tuple[str, ...]] = ("customer",)

    def __init__(self, name: str, settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(name, settings)
        self.written = 0

    def read_changes(self, entity: str, cursor: str | None, limit: int = 500) -> ChangePage:
        self.calls += 1
        return ChangePage([], cursor, more=False)

    def write(self, entity: str, batch: list[WriteRequest]) -> list[WriteResult]:
        self.calls += 1
        out = []
        for r in batch:
            if r.native_id is None:
                self.written += 1
            out.append(WriteResult(native_id=r.native_id or f"sf{self.written}", updated_at=datetime.now(UTC)))
        return out


def backfill(total: int) -> dict[str, Any]:
    quiet_logs()
    tmp = tempfile.mkdtemp(prefix="synchub-backfill-")
    source, sink = _Source("shop", total), _Sink("crm")
    systems = Systems(
        hub=System("crm", "salesforce", load_mapping(MAPPINGS / "crm.yaml"), {"customer": "both"}, sink),
        spokes={"shop": System("shop", "shopify", load_mapping(MAPPINGS / "shop.yaml"), {"customer": "both"}, source)},
    )
    pipeline = Pipeline(Store(f"sqlite:///{tmp}/state.db"), systems, read_before_write=False)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    c0, t0 = time.process_time(), time.perf_counter()
    marks = []
    while True:
        read = pipeline.poll("shop", "customer", max_pages=1)
        for name in ("crm", "shop"):
            while pipeline.flush(name).written:
                pass
        done = sink.written
        if done and done % 100_000 < 500 and (not marks or marks[-1][0] != done):
            marks.append((done, round(time.perf_counter() - t0, 1)))
        if read == 0:
            break
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    pipeline.store.close()
    db_mb = round(sum(f.stat().st_size for f in Path(tmp).glob("state.db*")) / 2**20)
    shutil.rmtree(tmp)
    assert sink.written == total, f"{sink.written} customers reached the CRM of {total}"
    return {
        "customers": total,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "per_s": round(total / wall),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "rss_before_mb": round(rss0 / 1024),
        "db_mb": db_mb,
        "progress": marks,
    }


def _child(kind: str, arg: int, rounds: int, seed: int, opts: dict[str, Any], queue: Any) -> None:
    try:
        queue.put(incremental(arg, rounds, seed, **opts) if kind == "incremental" else backfill(arg))
    except BaseException as exc:
        queue.put({"error": repr(exc)})
        raise


def _in_child(kind: str, arg: int, rounds: int, seed: int, **opts: Any) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(kind, arg, rounds, seed, opts, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if "error" in result:
        sys.exit(f"{kind} {arg}: {result['error']}")
    return dict(result)


HEADING = "## Growth: incremental sync and backfill (issue 11, part 5)"
RESULTS = ROOT / "bench" / "growth-results.json"


def _earlier() -> dict[str, Any]:
    """The results the docs section was last written from, so a run that measured only the backfill
    keeps the incremental table of an earlier run, and the other way round."""
    return dict(json.loads(RESULTS.read_text(encoding="utf-8"))) if RESULTS.exists() else {}


def write_docs(inc: list[dict[str, Any]], fill: dict[str, Any] | None, command: str) -> None:
    runs = _earlier()
    stamp = f"{datetime.now(UTC):%Y-%m-%d}, {machine()}"
    if inc:
        # a row per (store size, SQLite tuning): a run replaces the rows it measured again
        key = lambda r: (r["stored"], r.get("cache_mb", 64), r.get("mmap_mb", 256))  # noqa: E731
        fresh = [{**r, "command": command, "when": stamp} for r in inc]
        done = {key(r) for r in fresh}
        kept = [r for r in runs.get("incremental", {}).get("rows", []) if key(r) not in done]
        runs["incremental"] = {"rows": sorted(kept + fresh, key=key)}
    if fill:
        runs["backfill"] = {"command": command, "when": stamp, "result": fill}
    RESULTS.write_text(json.dumps(runs, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    lines = [
        HEADING,
        "",
        "Written by `bench/growth.py --write-docs` from `bench/growth-results.json`, where each run",
        "replaces only the part it measured (incremental, backfill).",
        "",
        f"Goal: syncing {CHANGED:,} changed customers takes the same time whatever the number already",
        "synced (cost proportional to the changes); a 1M-customer backfill streams, under 500 MB peak RSS.",
        "SQLite, with the store's default page cache (`cache_size`, 64 MiB) and memory map (256 MiB).",
    ]
    part = runs.get("incremental")
    if part:
        rows = part["rows"]
        commands = ", ".join(f"`{c}`" for c in dict.fromkeys(r["command"] for r in rows))
        whens = " / ".join(dict.fromkeys(r["when"] for r in rows))
        lines += [
            "",
            f"Incremental — {commands} — {whens}.",
            "",
            "The pre-synced store is one customer synced through the real pipeline (created in the shop,",
            "written to the CRM, edited once), cloned N times into every table (golden, xref, identity keys,",
            "sync bases, field history, done outbox rows) with its ids, e-mail and phone replaced, then",
            "ANALYZE. Each round edits 1,000 random stored customers in the shop (note and city) and drains:",
            "poll, merge, CRM write, CRM echo. Median of the rounds; CPU is the process's. Pages: B-tree",
            "pages SQLite visited per change (`sqlite3_db_status` cache hits + misses; pages read through",
            "the memory map are not counted, so at 10k, whose file is all mapped, the count is low) and",
            "how many of them missed its page cache and were read from the file. Times come from a machine",
            "shared with other work (two cores, both busy at times): they vary by tens of per cent from",
            "round to round; the page counts do not.",
            "",
            "| stored customers | SQLite cache / map (MiB) | DB size | build (s) | rounds "
            "| sync 1,000 changes: wall (s) | CPU (s) | changes/s | pages/change | misses/change |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in rows:
            lines.append(
                f"| {r['stored']:,} | {r.get('cache_mb', 64)} / {r.get('mmap_mb', 256)} | {r['db_mb']} MB "
                f"| {r['fill_s']} | {r['rounds']} | {r['wall_s']} | {r['cpu_s']} | {r['changes_per_s']:,} "
                f"| {r.get('pages', '–')} | {r.get('misses', '–')} |"
            )
        default = [r for r in rows if (r.get("cache_mb", 64), r.get("mmap_mb", 256)) == (64, 256)]
        if default:
            lo, hi = min(r["cpu_s"] for r in default), max(r["cpu_s"] for r in default)
            lines += ["", f"Spread of CPU time across store sizes (default tuning): {lo}–{hi} s ({hi / lo:.2f}×)."]
            if hi / lo > 1.1:
                lines += ["", *_explain(rows, default)]
            lines += _statement_table(default)
    part = runs.get("backfill")
    if part:
        b = part["result"]
        lines += [
            "",
            f"Backfill — command: `{part['command']}` — {part['when']}.",
            "",
            "A source that generates customers page by page (500 a page) and a CRM sink that keeps only a",
            "count; poll one page, flush the CRM, repeat — streamed end to end. Peak RSS is the process's",
            "`ru_maxrss`: it includes SQLite's page cache (64 MiB) and the pages of the database file it",
            "has mapped (up to 256 MiB), both fixed in size, so it stops growing once they are full.",
            "",
            "| customers | wall (s) | CPU (s) | customers/s | peak RSS | RSS before | DB size |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
            f"| {b['customers']:,} | {b['wall_s']} | {b['cpu_s']} | {b['per_s']:,} | "
            f"{b['peak_rss_mb']} MB | {b['rss_before_mb']} MB | {b['db_mb']} MB |",
        ]
        if part.get("note"):
            lines += ["", str(part["note"])]
        if b.get("progress"):
            progress = list(dict.fromkeys(tuple(m) for m in b["progress"]))
            marks = ", ".join(f"{n:,} at {t} s" for n, t in progress)
            lines += ["", f"Progress (customers in the CRM, seconds since start): {marks}."]
            steps = [round(t - t0, 1) for (_, t0), (_, t) in zip([(0, 0.0), *progress], progress, strict=False)]
            bounded = b["peak_rss_mb"] < 500
            lines += [
                "",
                f"Result: peak RSS {b['peak_rss_mb']} MB — "
                + ("under the 500 MB goal (met)" if bounded else "over the 500 MB goal (MISSED)")
                + f"; each 100,000 customers took {min(steps)}–{max(steps)} s (first {steps[0]} s, last "
                f"{steps[-1]} s): "
                + (
                    "the time grows with the customers backfilled, not with what is stored already."
                    if steps[-1] <= 2 * steps[0]
                    else "each stretch costs more than the one before — the time grows faster than the customers."
                ),
            ]
    lines.append("")
    replace_section("\n".join(lines))


def _statement_table(rows: list[dict[str, Any]]) -> list[str]:
    """Per statement shape: runs in a round, pages one run visits at each size, and its plan."""
    profiled = [r for r in rows if r.get("statements")]
    if not profiled:
        return []
    shapes: dict[str, dict[int, dict[str, Any]]] = {}
    for r in profiled:
        for st in r["statements"]:
            shapes.setdefault(st["sql"], {})[r["stored"]] = st
    sizes = [r["stored"] for r in profiled]
    largest = sizes[-1]
    lines = [
        "",
        "Every statement of one round (`--profile`), the pages one run of it visits (a warm replay of the",
        "traced SQL, values written in, without the memory map so all pages are counted), and its plan",
        "at the largest store:",
        "",
        "| statement | runs a round | " + " | ".join(f"pages a run at {n:,}" for n in sizes) + " | plan |",
        "| --- | ---: | " + " | ".join("---:" for _ in sizes) + " | --- |",
    ]
    ranked = sorted(shapes.items(), key=lambda kv: -max(st["per_round"] * (st["pages"] or 0) for st in kv[1].values()))
    for shape, by_size in ranked:
        ref = by_size.get(largest) or next(iter(by_size.values()))
        pages = " | ".join(str(by_size[n]["pages"]) if n in by_size else "–" for n in sizes)
        sql = shape if len(shape) <= 110 else shape[:107] + "…"
        lines.append(f"| `{sql}` | {ref['per_round']:,} | {pages} | {'; '.join(ref['plan']) or '–'} |")
    totals = [sum(st["per_round"] * (st["pages"] or 0) for st in r["statements"]) / CHANGED for r in profiled]
    lines += [
        "",
        "Pages visited per change, summed over the statements: "
        + ", ".join(f"{t:.0f} at {n:,}" for t, n in zip(totals, sizes, strict=True))
        + ".",
    ]
    return lines


def _explain(rows: list[dict[str, Any]], default: list[dict[str, Any]]) -> list[str]:
    """Why the cost per change grows with the store, from this run's figures and the profile."""
    small, large = default[0], default[-1]
    sums = {
        r["stored"]: sum(st["per_round"] * (st["pages"] or 0) for st in r["statements"]) / CHANGED
        for r in default
        if r.get("statements")
    }
    depth = (
        f"{sums[small['stored']]:.0f} → {sums[large['stored']]:.0f} pages per change "
        f"({sums[large['stored']] / sums[small['stored']]:.2f}×, the statement table below)"
        if small["stored"] in sums and large["stored"] in sums
        else "more pages per change"
    )
    tuned = [r for r in rows if r["stored"] == large["stored"] and r not in default]
    tried = "; ".join(
        f"{r['cpu_s']} s CPU with {r['cache_mb']} MiB of cache and {r['mmap_mb']} MiB of map" for r in tuned
    )
    return [
        f"**Why {large['stored']:,} stored customers cost more than {small['stored']:,} — profiled.** Not a scan",
        "and not a bad plan: every statement a change runs is an index `SEARCH` (plans in the table below;",
        "the temporary B-trees sort one chunk's ≤ 50 records, and the pending inbox, empty here), and the",
        "same statements run as often at every size. Two things grow with the store, both inside SQLite's",
        "B-trees:",
        "",
        "1. *Depth.* A look-up or insert descends one B-tree per table and per index it touches; in the",
        "   larger store they are deeper, so the same statements visit",
        f"   {depth}",
        "   — the O(log n) of any B-tree store, PostgreSQL's included.",
        "2. *Cold pages.* The changed customers are spread evenly over the store, so the leaf pages they",
        "   need are in no cache:",
        f"   {large.get('misses', '–')} pages per change miss SQLite's page cache at {large['stored']:,}"
        f" (vs {small.get('misses', '–')} at {small['stored']:,}, whose file fits in the memory map)",
        "   and are read from the file — here from the operating system's file cache, a system call and",
        "   a copy each.",
        "",
        "SQLite's own work is about a third of a round's CPU at 1M (cProfile of one round, 2026-12-03:",
        "cursor execute, fetch and commit 0.67 s of 2.14 s); the rest is the pipeline's Python, whose",
        "cost per change does not depend on the store, so CPU grows less than the page count does.",
        "",
        "A bigger cache or map removes neither" + (f" ({tried}, against the default row above)" if tried else "") + ":",
        "evenly spread changes are first touches whatever the cache holds (the map only trades each",
        "read for a page fault). A bigger cache pays when the same records change again and again (they",
        "stay cached), which is why the sizes are now settings —",
        "`[state] sqlite_cache_mb` and `sqlite_mmap_mb` (docs/configuration.md) — and not a fix for this",
        "curve. What would cut it is fewer and smaller B-trees per change. Golden records,",
        "cross-references and sync bases grow with the customers, as they must; but the outbox keeps",
        "every done row, under four indexes that a change's insert and status update each descend, and",
        "field history a row per changed field, forever — neither is pruned today. Pruning done outbox",
        "rows and old field history would size those trees by recent traffic instead of by all history.",
        "What is left is the log n of a B-tree, which no indexed store avoids: strictly flat is out of",
        f"reach, and the growth here is {large['cpu_s'] / small['cpu_s']:.2f}× in CPU from {small['stored']:,} to "
        f"{large['stored']:,} stored customers.",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000", help="stored customers, comma-separated")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backfill", type=int, default=100_000, help="customers to backfill; 0: skip")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--store-dir",
        help="keep each built store here (growth-<size>.db) and start later runs from a copy of it",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="one more round per size recording each statement: count, query plan, pages per run",
    )
    parser.add_argument(
        "--sqlite",
        metavar="CACHE_MB,MMAP_MB",
        help="the store's [state] sqlite_cache_mb and sqlite_mmap_mb for the incremental rounds",
    )
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    tuning = tuple(int(v) for v in args.sqlite.split(",")) if args.sqlite else None
    inc = []
    print("| stored | DB MB | build s | wall s (1k changes) | CPU s | changes/s |")
    for size in [int(s) for s in args.sizes.split(",") if s]:
        r = _in_child(
            "incremental", size, args.rounds, args.seed, store_dir=args.store_dir, profile=args.profile, tuning=tuning
        )
        inc.append(r)
        print(f"| {r['stored']} | {r['db_mb']} | {r['fill_s']} | {r['wall_s']} | {r['cpu_s']} | {r['changes_per_s']} |")
    for r in inc:
        for st in r.get("statements", []):
            print(
                f"{r['stored']:>8} {st['per_round']:6}x {st['pages']!s:>5} pages  {st['sql'][:100]}  "
                f"[{'; '.join(st['plan'])}]"
            )
    fill = None
    if args.backfill:
        fill = _in_child("backfill", args.backfill, 0, args.seed)
        print(
            f"backfill {fill['customers']}: {fill['wall_s']} s wall, {fill['cpu_s']} s CPU, "
            f"{fill['per_s']}/s, peak RSS {fill['peak_rss_mb']} MB"
        )
    print(json.dumps({"incremental": inc, "backfill": fill}))
    if args.write_docs:
        argv = shlex.join(a for a in sys.argv[1:] if a != "--write-docs")
        write_docs(inc, fill, f"uv run python bench/growth.py {argv}".strip())


if __name__ == "__main__":
    main()
