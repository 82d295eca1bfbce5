# pruneplast: the README's commands. `make book` and `make test` set up .venv when it is missing.
#   make book [PROFILE=paper|quick]   execute every chapter with papermill, build _build/html
#   make test                         engine tests, notebook checks (nbval), quick book build
#   make reference                    refresh the nbval reference notebooks in tests/reference
#   make clean                        remove build outputs (keeps .venv, results/ and .cache/)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROFILE ?= paper

# Tools of the virtualenv come first (kernels started by papermill and nbval use its python).
export PATH := $(abspath $(VENV))/bin:$(PATH)

.PHONY: help install test book reference clean distclean bench

help:
	@sed -n '2,6p' Makefile

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls whenever pyproject.toml (the one place with pins) changes.
$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[book,test]'
	touch $@

install: $(INSTALLED)

# The quick book is built first: each chapter executes once, and the notebook checks then compare
# those executed notebooks with tests/reference (PRUNEPLAST_EXECUTED) instead of re-running them.
test: $(INSTALLED)
	@set -e; start=$$(date +%s); \
	echo "== quick book: every notebook at the quick profile, warnings as errors =="; \
	$(VENV)/bin/pruneplast book --profile quick --build-dir _build/test; \
	t1=$$(date +%s); \
	echo "== engine tests and notebook checks =="; \
	PRUNEPLAST_EXECUTED=$(CURDIR)/_build/test/exec/quick $(PY) -m pytest tests; \
	end=$$(date +%s); \
	echo "make test finished: quick book $$(( t1 - start )) s, tests $$(( end - t1 )) s, total $$(( end - start )) s"

book: $(INSTALLED)
	$(VENV)/bin/pruneplast book --profile $(PROFILE)

reference: $(INSTALLED)
	$(VENV)/bin/pruneplast reference

# (bench and explore targets go here)
# make bench [BENCH_ARGS="--chapters quick"]: engine speed vs the matmul limit and the common way
bench: $(INSTALLED)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)


clean:
	rm -rf _build runs .pytest_cache tests/reference/*.failed.ipynb
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV) results .cache
