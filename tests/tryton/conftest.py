"""Fixtures: a real trytond per test (from the cached template), and a deployment around it.

The first use builds the cache (``python -m sandbox.tryton.server prepare``, about 40 s); later
tests start a server from a copy of the template in a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from core.store.db import Store
from sandbox.tryton.erp import Erp
from sandbox.tryton.server import TrytonServer


@pytest.fixture
def erp(tryton: TrytonServer) -> Iterator[Erp]:
    """A Tryton user at work (the test's own session, not the connector's)."""
    user = Erp(tryton)
    yield user
    user.close()


@pytest.fixture
def sqlite_state(tmp_path) -> Iterator[Store]:  # type: ignore[no-untyped-def]
    store = Store(f"sqlite:///{tmp_path / 'state.db'}")
    yield store
    store.close()
