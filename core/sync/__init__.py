"""The sync pipeline: plain functions over the state store (no queues here; see workers/)."""
