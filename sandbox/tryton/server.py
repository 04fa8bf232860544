"""A real Tryton 8.2 server for tests and benchmarks: installed once, started per test in seconds.

``prepare()`` (``python -m sandbox.tryton.server prepare``) builds, once per set of pinned versions:

* its own venv (``python3 -m uv venv`` + ``uv pip install`` of the pinned modules), never the
  project's — trytond's dependencies must not leak into our lock;
* the ``synchub_pos`` server module (sandbox/tryton/synchub_pos: a customer on POS tickets), copied
  into ``trytond/modules``;
* a SQLite database with every module activated and the master data (masterdata.py), saved as a
  template with SQLite's online backup.

``TrytonServer`` copies the template and runs ``trytond`` on 127.0.0.1, port 0 (the port is read
from the server's own start-up line). The cache lives in ``$SYNCHUB_CACHE`` (default
``~/.cache/synchub``) under a key made of the pinned versions and the hash of the files that shape
the template, so changing either builds a new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PINS = {
    "trytond": "8.2.1",
    "trytond-party": "8.2.0",
    "trytond-company": "8.2.0",
    "trytond-currency": "8.2.0",
    "trytond-country": "8.2.0",
    "trytond-product": "8.2.0",
    "trytond-stock": "8.2.1",
    "trytond-account": "8.2.1",
    "trytond-account-product": "8.2.0",
    "trytond-account-invoice": "8.2.0",
    "trytond-account-invoice-stock": "8.2.0",
    "trytond-sale": "8.2.0",
    "trytond-sale-point": "8.2.0",
    "trytond-sale-complaint": "8.2.0",
    "proteus": "8.2.0",
    # Tryton on PostgreSQL needs psycopg 3 and its pool (not psycopg2)
    "psycopg": "3.3.9",
    "psycopg-binary": "3.3.9",
    "psycopg-pool": "3.3.3",
}
MODULES = ["party", "company", "product", "stock", "account", "sale", "sale_point", "sale_complaint", "synchub_pos"]
DATABASE = "synchub"
ADMIN_LOGIN = "admin"
ADMIN_PASSWORD = "synchub-test-admin"  # a throwaway server on 127.0.0.1; not a secret
SHAPING_FILES = [
    HERE / "masterdata.py",
    *sorted((HERE / "synchub_pos").glob("*.py")),
    HERE / "synchub_pos" / "tryton.cfg",
]


def cache_root() -> Path:
    return Path(os.environ.get("SYNCHUB_CACHE") or Path.home() / ".cache" / "synchub")


def cache_key() -> str:
    digest = hashlib.sha256(json.dumps([PINS, MODULES], sort_keys=True).encode())
    for path in SHAPING_FILES:
        if path.is_file():
            digest.update(path.name.encode() + path.read_bytes())
    return f"tryton-{PINS['trytond']}-{digest.hexdigest()[:12]}"


def cache_dir() -> Path:
    return cache_root() / cache_key()


def _venv_python(root: Path) -> Path:
    return root / "venv" / "bin" / "python"


def _config_text(
    data_dir: Path | None,
    listen: str = "127.0.0.1:0",
    session_max_age: int = 30 * 24 * 3600,
    postgres_port: int | None = None,
) -> str:
    # [session] max_age: a session's whole life (30 days by default; every call checks it);
    # [session] timeout only guards the calls that want a fresh session (trytond/protocols/dispatcher.py).
    database = (
        f"uri = postgresql://postgres@127.0.0.1:{postgres_port}/\n"
        if postgres_port
        else f"uri = sqlite://\npath = {data_dir}\n"
    )
    return f"[database]\n{database}\n[web]\nlisten = {listen}\n\n[session]\nmax_age = {session_max_age}\n"


def is_prepared() -> bool:
    return (cache_dir() / "ready.json").is_file()


def prepare(log: Any = print) -> Path:
    """Build the cached venv and template database if missing; returns the cache directory.

    Built in place under a file lock (a venv's scripts name their python by absolute path, so it
    cannot be built elsewhere and moved); ``ready.json`` is written last, so a build that died half
    way is recognised and redone.
    """
    root = cache_dir()
    if is_prepared():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if is_prepared():
            return root
        started = time.monotonic()
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir()
        try:
            _build(root, log)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        ready = {"ids": _build_ids[0], "pins": PINS, "seconds": round(time.monotonic() - started, 1)}
        (root / "ready.json").write_text(json.dumps(ready))
        log(f"tryton: prepared in {time.monotonic() - started:.0f} s at {root}")
        return root


_build_ids: list[dict[str, Any]] = [{}]


def _run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if res.returncode != 0:
        raise RuntimeError(
            f"{' '.join(cmd[:3])} … failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
        )
    return res


def _uv() -> list[str]:
    """uv itself: on PATH, or as the module the system python carries (``python3 -m uv``)."""
    found = shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def _build(root: Path, log: Any) -> None:
    python = str(_venv_python(root))
    log(f"tryton: installing {len(PINS)} pinned packages into {root / 'venv'}")
    _run([*_uv(), "venv", "-q", "--python", f"{sys.version_info.major}.{sys.version_info.minor}", str(root / "venv")])
    _run(
        [*_uv(), "pip", "install", "-q", "--python", python, *(f"{name}=={version}" for name, version in PINS.items())]
    )
    site = _run([python, "-c", "import trytond.modules, os; print(os.path.dirname(trytond.modules.__file__))"])
    shutil.copytree(
        HERE / "synchub_pos", Path(site.stdout.strip()) / "synchub_pos", ignore=shutil.ignore_patterns("__pycache__")
    )
    data = root / "build"
    data.mkdir()
    (data / f"{DATABASE}.sqlite").touch()
    conf = root / "build.conf"
    conf.write_text(_config_text(data))
    passfile = root / "admin.pass"
    passfile.write_text(ADMIN_PASSWORD)
    env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
    log("tryton: creating the database and activating modules")
    _run(
        [
            str(root / "venv" / "bin" / "trytond-admin"),
            "-c",
            str(conf),
            "-d",
            DATABASE,
            "--all",
            "-u",
            *MODULES,
            "--activate-dependencies",
            "--email",
            "admin@example.com",
        ],
        env=env,
    )
    log("tryton: building master data")
    out = _run([python, str(HERE / "masterdata.py"), str(conf), DATABASE], env=env)
    _build_ids[0] = json.loads(out.stdout.strip().splitlines()[-1])
    src = sqlite3.connect(data / f"{DATABASE}.sqlite")
    dst = sqlite3.connect(root / "template.sqlite")
    with dst:
        src.backup(dst)
    src.close()
    dst.close()
    shutil.rmtree(data)


def prepare_pg(log: Any = print) -> Path:
    """Also build a PostgreSQL template (a plain pg_dump), once: activating the modules on
    PostgreSQL takes minutes, restoring the dump seconds. Needs initdb/pg_ctl (sandbox/postgres.py)."""
    from sandbox.postgres import PostgresServer, _pg_bin

    root = prepare(log)
    dump = root / "template.pg.sql"
    if dump.is_file():
        return root
    with open(root.parent / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if dump.is_file():
            return root
        started = time.monotonic()
        pg = PostgresServer()
        try:
            pg._exec(f"CREATE DATABASE {DATABASE}")
            conf = root / "build-pg.conf"
            conf.write_text(_config_text(None, postgres_port=pg.port))
            passfile = root / "admin.pass"
            passfile.write_text(ADMIN_PASSWORD)
            env = {**os.environ, "TRYTONPASSFILE": str(passfile)}
            log("tryton: activating modules on PostgreSQL (minutes, once)")
            _run(
                [
                    str(root / "venv" / "bin" / "trytond-admin"),
                    "-c",
                    str(conf),
                    "-d",
                    DATABASE,
                    "--all",
                    "-u",
                    *MODULES,
                    "--activate-dependencies",
                    "--email",
                    "admin@example.com",
                ],
                env=env,
            )
            _run([str(_venv_python(root)), str(HERE / "masterdata.py"), str(conf), DATABASE], env=env)
            pg_dump = _pg_bin("pg_dump") or "pg_dump"
            partial = root / "template.pg.sql.part"
            _run(
                [
                    pg_dump,
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(pg.port),
                    "-U",
                    "postgres",
                    "--no-owner",
                    "--no-privileges",
                    "-f",
                    str(partial),
                    DATABASE,
                ]
            )
            partial.rename(dump)
        finally:
            pg.stop()
        log(f"tryton: PostgreSQL template built in {time.monotonic() - started:.0f} s")
        return root


def master_ids() -> dict[str, Any]:
    return dict(json.loads((cache_dir() / "ready.json").read_text())["ids"])


class TrytonServer:
    """One ``trytond`` on 127.0.0.1 over a fresh copy of the template database."""

    _pg_databases = itertools.count(1)

    def __init__(
        self, workdir: Path | None = None, session_max_age: int = 30 * 24 * 3600, postgres: Any = None
    ) -> None:
        """``postgres``: a sandbox.postgres.PostgresServer to run on instead of SQLite."""
        root = prepare_pg() if postgres is not None else prepare()
        self.ids = master_ids()
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="trytond-")
        self.dir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        conf = self.dir / "trytond.conf"
        self.database = DATABASE
        if postgres is None:
            data = self.dir / "data"
            data.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(root / "template.sqlite", data / f"{DATABASE}.sqlite")
            conf.write_text(_config_text(data, session_max_age=session_max_age))
        else:
            from sandbox.postgres import _pg_bin

            self.database = f"tryton_{next(self._pg_databases)}_{os.getpid()}"
            postgres._exec(f"CREATE DATABASE {self.database}")
            _run(
                [
                    _pg_bin("psql") or "psql",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(postgres.port),
                    "-U",
                    "postgres",
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    self.database,
                    "-f",
                    str(root / "template.pg.sql"),
                ]
            )
            conf.write_text(_config_text(None, session_max_age=session_max_age, postgres_port=postgres.port))
        self.log_path = self.dir / "trytond.log"
        self._log = self.log_path.open("w+")
        self.proc = subprocess.Popen(
            [str(root / "venv" / "bin" / "trytond"), "-c", str(conf), "-d", self.database, "-v"],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.port = self._wait_for_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.login = ADMIN_LOGIN
        self.password = ADMIN_PASSWORD
        self._lock = threading.Lock()

    def settings(self, **extra: Any) -> dict[str, Any]:
        """A connector's settings for this server (what a spoke's TOML section would hold)."""
        return {
            "base_url": self.base_url,
            "database": self.database,
            "login": self.login,
            "password": self.password,
            "warehouses": ["WH-KRK"],
            "complaint_type": self.ids["complaint_type"],
            **extra,
        }

    def _wait_for_port(self, timeout: float = 60.0) -> int:
        deadline = time.monotonic() + timeout
        pattern = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
        while time.monotonic() < deadline:
            text = self.log_path.read_text()
            found = pattern.search(text)
            if found:
                return int(found.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"trytond exited with {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("trytond did not start within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        if self._tmp is not None:
            self._tmp.cleanup()


def main(argv: list[str]) -> int:
    if argv[:1] != ["prepare"] or argv[1:] not in ([], ["--postgresql"]):
        print("usage: python -m sandbox.tryton.server prepare [--postgresql]", file=sys.stderr)
        return 2
    started = time.monotonic()
    root = prepare_pg() if argv[1:] == ["--postgresql"] else prepare()
    print(f"tryton ready at {root} ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
