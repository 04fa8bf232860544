"""Writing web orders as Tryton sales: not built yet (see docs/tryton.md); refused per record."""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.connector import WriteRequest, WriteResult
from core.errors import RecordRejected

if TYPE_CHECKING:
    from .connector import TrytonConnector


def write_sales(conn: TrytonConnector, batch: list[WriteRequest]) -> list[WriteResult]:
    refused = RecordRejected("writing orders to Tryton is not supported yet", code="NOT_SUPPORTED")
    return [WriteResult(error=refused) for _ in batch]
