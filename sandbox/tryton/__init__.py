"""A real Tryton 8.2 server for tests, benchmarks and the demo (not an emulator: trytond itself,
installed into its own cached venv by ``python -m sandbox.tryton.server prepare``)."""
