# frugalbench: `make demo` runs the main job on the offline default, `make test` the whole suite.
PY := .venv/bin/python
PYTEST_ARGS ?=

.PHONY: setup setup-browser demo test benchmark clean-data

setup:
	@bash scripts/setup.sh

setup-browser:
	@bash scripts/setup_browser.sh

demo: setup
	@$(PY) scripts/demo.py

test: setup setup-browser
	@$(PY) -m pytest --benchmark-disable $(PYTEST_ARGS)

benchmark: setup
	@$(PY) -m pytest tests/perf --benchmark-only --benchmark-json=data/benchmark.json
	@$(PY) -m frugalbench results ingest-benchmark data/benchmark.json

clean-data:
	rm -rf data/synthetic data/frugalbench.duckdb
