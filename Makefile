# Two commands from a fresh clone: `make demo` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
KEY := AKIA3PARTNERSYNC0001
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test bench sample lab clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP) $@

demo: $(STAMP)
	@echo "== who used $(KEY), and as whom"
	@$(BIN)/trailkit owner $(KEY) --logs data/sample
	@echo; echo "== $(KEY): distinct source IPs (expected network 203.0.113.0/24)"
	@$(BIN)/trailkit ips $(KEY) --logs data/sample --allow 203.0.113.0/24
	@echo; echo "== $(KEY): most recent events"
	@$(BIN)/trailkit usage $(KEY) --logs data/sample --limit 10
	@echo; echo "== everything in the window 2026-10-24T02:00Z to 03:00Z"
	@$(BIN)/trailkit window --start 2026-10-24T02:00:00Z --end 2026-10-24T03:00:00Z --logs data/sample
	@echo; echo "== temporary keys minted with $(KEY)"
	@$(BIN)/trailkit minted $(KEY) --logs data/sample
	@echo; echo "== what $(KEY) and the keys it led to did: findings, most severe first"
	@$(BIN)/trailkit findings $(KEY) --logs data/sample --allow 203.0.113.0/24
	@echo; echo "== report (the investigation notebook, run headless)"
	@$(BIN)/trailkit report $(KEY) --logs data/sample --allow 203.0.113.0/24 --out reports/sample-report.html

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/investigate_access_key.ipynb

test: $(DEV_STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile

# Not part of `make test`: builds corpora of 0.5, 1 and 2 million records under .bench/ (reused), times every
# approach and writes BENCHMARKS.md. Needs jq for the jq row (apt-get install jq), ~15 minutes (most of it jq and pandas).
bench: $(DEV_STAMP)
	@command -v jq >/dev/null || ((apt-get update -qq && apt-get install -y -qq jq) >/dev/null 2>&1 || echo "jq not installed: its row is skipped")
	$(BIN)/python -m tests.bench.run $(BENCH_ARGS)

sample: $(STAMP)
	$(BIN)/trailkit sample --out data/sample

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info reports tests/artifacts
