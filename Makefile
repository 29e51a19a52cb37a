# Syndicate — the two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Reinstall when pyproject.toml changes.
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml 2>/dev/null | cut -d' ' -f1)

.PHONY: install run test bench lint typecheck clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Syndicate needs Python 3.11 or newer (set PYTHON=python3.x)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

## make run: migrate the embedded database, load demo data if empty, serve on http://127.0.0.1:8000
run: install
	$(BIN)/syndicate db upgrade
	$(BIN)/syndicate demo --if-empty
	$(BIN)/syndicate serve

## make test: the whole suite (SQLite; PostgreSQL too when TEST_DATABASE_URL is set)
test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: benchmarks on loopback; prints figures and ratios
bench: install
	$(BIN)/python -m bench

typecheck: install
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache *.egg-info
