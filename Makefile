.PHONY: lint format test bench demo images

lint:
	python3 -m ruff check craton_wf client tests bench
	python3 -m ruff format --check craton_wf client tests bench
	python3 -m mypy craton_wf
	cd client && python3 -m mypy cratonclient

format:
	python3 -m ruff format craton_wf client tests bench
	python3 -m ruff check --fix craton_wf client tests bench

test:
	scripts/test

bench:
	python3 -m bench.step_overhead
	python3 -m bench.fanout
	python3 -m bench.dispatch --database-url "$$(scripts/start-postgres.sh)"

demo:
	scripts/demo

images:
	scripts/make-base-images.sh
