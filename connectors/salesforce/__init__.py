"""The Salesforce connector (the hub): see ``connector``."""

from connectors.salesforce.connector import ApiUsage, SalesforceConnector
from core.connector import register_connector

register_connector(SalesforceConnector)

__all__ = ["ApiUsage", "SalesforceConnector"]
