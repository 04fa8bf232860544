"""An emulated org per test and connectors pointed at it (the connector only sees a login URL
and a CA bundle: it does not know it talks to an emulator)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from connectors.salesforce import SalesforceConnector
from sandbox.salesforce import SalesforceEmulator


class TickingClock:
    """An org clock in the past that moves one second per saved record: the connector reads
    only finished seconds (``read_lag_seconds``), and these all are."""

    def __init__(self, start: datetime = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator() as emu:
        emu.org.clock = TickingClock()
        yield emu


def settings_for(emu: SalesforceEmulator, auth: str = "client_credentials", **extra: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"login_url": emu.base_url, "client_id": emu.client_id, "ca_bundle": emu.ca_bundle}
    if auth == "jwt":
        base.update(private_key=SecretStr(emu.private_key_pem or ""), username=emu.username)
    elif auth == "password":
        base.update(
            client_secret=SecretStr(emu.client_secret),
            username=emu.username,
            password=SecretStr(emu.password),
            security_token=SecretStr(emu.security_token),
        )
    else:
        base.update(client_secret=SecretStr(emu.client_secret))
    base.update(extra)
    return base


@pytest.fixture
def connector(emulator: SalesforceEmulator) -> Iterator[SalesforceConnector]:
    conn = SalesforceConnector("crm", settings_for(emulator))
    yield conn
    conn.close()
