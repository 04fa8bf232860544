"""The state store: tables, engine set-up and migrations."""
