"""A Salesforce REST API emulator over HTTPS on 127.0.0.1 (see ``server``)."""

from sandbox.salesforce.org import Org, SaveError, ValidationRule
from sandbox.salesforce.server import Faults, SalesforceEmulator

__all__ = ["Faults", "Org", "SalesforceEmulator", "SaveError", "ValidationRule"]
