# The two commands of the README's quickstart.
.PHONY: demo test lint

demo:  ## set everything up, then plan the bundled example trial
	@./scripts/setup.sh
	@./scripts/demo.sh

test:  ## set everything up, then run the whole test suite (with a real PostgreSQL)
	@./scripts/setup.sh
	@./scripts/test.sh -q

lint:  ## ruff (style, docstrings, complexity) and mypy (types)
	@./scripts/setup.sh
	@.venv/bin/ruff check .
	@.venv/bin/mypy
