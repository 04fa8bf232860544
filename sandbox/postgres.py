"""A throwaway PostgreSQL server for tests, benchmarks and demos: initdb + pg_ctl on 127.0.0.1.

Runs the cluster as the ``postgres`` user when started as root (initdb refuses root), listens on a
random free port with trust auth, and keeps its data in a temporary directory removed on stop.
Each caller gets fresh databases cloned from a migrated template in milliseconds.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from core.store.db import make_engine, migrate


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL cluster owned by this test session."""

    def __init__(self) -> None:
        initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
        if not initdb or not pg_ctl:
            raise RuntimeError("initdb/pg_ctl not found (install Debian's postgresql package)")
        self.pg_ctl = pg_ctl
        self.root = Path(tempfile.mkdtemp(prefix="synchub-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root: run the cluster as `postgres`
            self.prefix = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o755)  # noqa: S103 - the postgres user must enter its own data dir
        self._run([initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        opts = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        self._run([pg_ctl, "-D", str(self.data), "-o", opts, "-l", str(self.root / "log"), "-w", "start"])
        self.admin_url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._names = itertools.count(1)
        self.template = "synchub_template"
        self._exec(f"CREATE DATABASE {self.template}")
        engine = make_engine(self.url(self.template))
        migrate(engine)
        engine.dispose()

    def _run(self, cmd: list[str]) -> None:
        subprocess.run([*self.prefix, *cmd], check=True, capture_output=True, timeout=120)  # noqa: S603

    def _exec(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(sql)

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{db}"

    def fresh_database(self) -> str:
        name = f"t{next(self._names)}_{os.getpid()}"
        self._exec(f"CREATE DATABASE {name} TEMPLATE {self.template}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run([self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"])
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
