"""Tryton 8.2 (ERP and POS) over JSON-RPC: see docs/tryton.md."""

from .connector import TrytonConnector

__all__ = ["TrytonConnector"]
