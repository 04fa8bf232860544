# The two commands of the README's quick start. Each installs what it needs (uv, then the locked
# Python dependencies) so a fresh machine needs nothing else.
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: demo test setup lint typecheck pytest bench docs

setup:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv \
		|| $(PYTHON) -m pip install --quiet --user --break-system-packages uv
	@$(UV) sync --frozen --quiet

## The main job: one omnichannel day on the emulators, from config.example.toml (`synchub demo --once`).
demo: setup
	$(UV) run synchub mappings check
	$(UV) run synchub demo --once

## Lint, type-check and the whole test suite; fails if any of them fails.
test: setup lint typecheck pytest

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck:
	$(UV) run mypy

pytest:
	$(UV) run pytest -q

## Every benchmark, each writing its section of docs/benchmarks.md (or docs/reliability.md): about 30 min.
bench: setup
	$(UV) run python bench/mapping.py --write-docs
	$(UV) run python bench/pipeline.py --write-docs
	$(UV) run python bench/overhead.py --write-docs
	$(UV) run python bench/idle.py --write-docs
	$(UV) run python bench/workers.py --write-docs
	$(UV) run python bench/salesforce.py --write-docs
	$(UV) run python bench/shopify.py
	$(UV) run python bench/throughput.py --write-docs
	$(UV) run python bench/steps.py --write-docs
	$(UV) run python bench/latency.py --write-docs
	$(UV) run python bench/growth.py --write-docs
	$(UV) run python bench/storm.py --write-docs
	$(UV) run python -m sandbox.tryton.server prepare
	$(UV) run python bench/tryton.py --write-docs

docs: setup
	$(UV) run synchub mappings docs
	$(UV) run synchub mappings schema > docs/mapping.schema.json
