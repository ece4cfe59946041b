# The single entry for the project's commands. See README.md.
.PHONY: demo test unit setup up down bench lint

demo:  ## stack up, example model built and run, output URLs printed
	bash scripts/demo.sh

test:  ## setup, stack up, full test suite against the real components
	bash scripts/test.sh

unit:  ## the unit tests alone: no stack, a few seconds
	.venv/bin/python -m pytest tests/unit -q

setup:
	bash scripts/setup.sh

up:
	bash scripts/up.sh

down:
	bash scripts/down.sh

bench:
	bash scripts/bench.sh

lint:
	.venv/bin/ruff format --check . && .venv/bin/ruff check .
