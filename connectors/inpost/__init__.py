"""InPost ShipX connector: ``registry.get("inpost")`` finds it here."""

from connectors.inpost.connector import InPostConnector

__all__ = ["InPostConnector"]
