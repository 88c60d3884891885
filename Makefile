.PHONY: lint format test bench demo images constraints

# The project's virtual environment (scripts/install-deps.sh makes it), else python3.
PYTHON ?= $(if $(wildcard .venv/bin/python),$(CURDIR)/.venv/bin/python,python3)

lint:
	$(PYTHON) -m ruff check craton_wf client tests bench
	$(PYTHON) -m ruff format --check craton_wf client tests bench
	$(PYTHON) -m mypy craton_wf
	cd client && $(PYTHON) -m mypy cratonclient
	PATH="$(dir $(PYTHON)):$$PATH" lint-imports

format:
	$(PYTHON) -m ruff format craton_wf client tests bench
	$(PYTHON) -m ruff check --fix craton_wf client tests bench

test:
	scripts/test

bench:
	$(PYTHON) -m bench.step_overhead
	$(PYTHON) -m bench.fanout
	$(PYTHON) -m bench.dispatch --database-url "$$(scripts/start-postgres.sh)"

demo:
	scripts/demo

images:
	scripts/make-base-images.sh

constraints:
	scripts/update-constraints.sh
