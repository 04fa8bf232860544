"""Two writers at once against one Tryton, on SQLite (its weakest backend for concurrency) and on
PostgreSQL (what production runs; the template is built by ``prepare --postgresql``).

What must hold: contention surfaces as a *transient* error (retried later, nothing dead-lettered),
never as a wrong or duplicated record; after the retries every customer is exactly one party.
(Two writes of the *same* record never run at once: the pipeline's claim() leases one write per
record and system — see docs/sync-core.md.)
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from connectors.tryton import TrytonConnector
from core.connector import WriteRequest, WriteResult
from core.errors import TransientError
from sandbox.tryton.erp import Erp
from sandbox.tryton.server import TrytonServer


def customers(prefix: str, n: int) -> list[WriteRequest]:
    return [
        WriteRequest(
            str(uuid.uuid4()),
            None,
            {
                "name": f"{prefix} {i}",
                "contact_mechanisms": [{"type": "email", "value": f"{prefix.lower()}{i}@example.pl"}],
                "addresses": [{"street": f"ul. Długa {i}", "city": "Kraków", "country": {"code": "PL"}}],
            },
        )
        for i in range(n)
    ]


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[TrytonServer]:
    if request.param == "sqlite":
        server = TrytonServer()
    else:
        pg = request.getfixturevalue("postgres")
        if pg is None:
            pytest.skip("!!! PostgreSQL unavailable: see the warning above !!!")
        server = TrytonServer(postgres=pg)
    try:
        yield server
    finally:
        server.stop()


def test_parallel_writers_make_each_party_once_and_contention_is_only_ever_transient(backend: TrytonServer):
    tryton = backend
    # Given two writers (two sessions) with 3 batches of 20 different customers each
    jobs = {name: customers(name, 60) for name in ("Kraków", "Gdańsk")}
    outcomes: dict[str, list[WriteResult]] = {}

    def run(name: str) -> None:
        conn = TrytonConnector(name, tryton.settings())
        pending = list(jobs[name])
        results: list[WriteResult] = []
        for _ in range(10):  # what the pipeline does: retry what failed transiently
            if not pending:
                break
            retry: list[WriteRequest] = []
            for start in range(0, len(pending), 20):
                batch = pending[start : start + 20]
                try:
                    answers = conn.write("customer", batch)
                except TransientError as exc:  # the whole call failed
                    answers = [WriteResult(error=exc)] * len(batch)
                for req, res in zip(batch, answers, strict=True):
                    results.append(res)
                    if isinstance(res.error, TransientError):
                        retry.append(req)
            pending = retry
        outcomes[name] = results
        conn.close()

    # When both write at the same time
    threads = [threading.Thread(target=run, args=(name,)) for name in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)

    # Then no error was other than transient, and every customer is exactly one party
    errors = [r.error for rs in outcomes.values() for r in rs if r.error is not None]
    assert all(isinstance(e, TransientError) for e in errors), errors
    codes = [r.canonical_id for rs in jobs.values() for r in rs]
    erp = Erp(tryton)
    parties = erp.search("party.party", [["code", "in", codes]], ["code"])
    erp.close()
    assert sorted(p["code"] for p in parties) == sorted(codes)
    print(f"transient errors retried: {len(errors)}")
