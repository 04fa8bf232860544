"""ShipX (InPost) emulator: a real HTTP server on 127.0.0.1 following InPost's documented API."""

from sandbox.inpost.emulator import ShipXEmulator

__all__ = ["ShipXEmulator"]
