# pruneplast: the README's commands. `make book` and `make test` set up .venv when it is missing.
#   make book [PROFILE=paper|quick]   execute every chapter with papermill, build _build/html
#   make check                        the inner loop: lint, types and the tests not marked slow (<= 2 min)
#   make test                         everything: lint, the quick book, every test and notebook check
#   make lint                         ruff check, ruff format --check and mypy on the package
#   make reference                    refresh the notebook-check references in tests/reference
#   make test-float-path              every chapter's checks under another float path (MKL)
#   make explore                      the interactive explorer as a web app (Voila) on localhost
#   make lab                          JupyterLab on localhost, the chapters opening as notebooks
#   make pdf [PROFILE=paper|quick]    print the built book again as one PDF, _build/html/pruneplast.pdf
#   make bench, make bench-directions engine speed on this machine (see benchmarks/README.md)
#   make clean                        remove build outputs (keeps .venv, results/ and .cache/)

MAKE_START := $(shell date +%s)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PROFILE ?= paper

# Tools of the virtualenv come first (kernels started by papermill use its python).
export PATH := $(abspath $(VENV))/bin:$(PATH)
# The install skips byte-compiling every file of every package (--no-compile: about a minute on two
# cores); Python then compiles only the modules it imports, once, so it must be allowed to write
# its bytecode caches (some environments set PYTHONDONTWRITEBYTECODE, which would make every
# process pay the compilation again).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install fused-step lab lint check test test-setup test-float-path book pdf reference clean distclean bench bench-directions explore browser widgets-js

help:
	@sed -n '2,/^$$/p' Makefile

$(PY):
	$(PYTHON) -m venv $(VENV)

# Reinstalls whenever pyproject.toml (the one place with pins) changes.
$(INSTALLED): pyproject.toml | $(PY)
	$(PY) -m pip install --no-compile -e '.[book,test]'
	touch $@

# The compiled training step of sparse replicas, built once for this machine (about half a minute
# the first time, a second once built; pruneplast/kernels/fused.py), so that no test or chapter waits
# for it. A chapter run without it builds it at first use.
fused-step: $(INSTALLED)
	@$(PY) -m pruneplast.kernels.fused

install: $(INSTALLED) fused-step

# Test files run in TEST_PROCESSES pytest processes side by side (pytest-xdist; a file stays in one
# process, so its module fixtures are built once): the engine tests pin torch to one thread, so one
# process would leave the second core idle most of the time. make test hands the longest files out
# first (tests/conftest.py: LONGEST_FIRST; --no-loadscope-reorder keeps that order), so that the
# processes finish together.
TEST_PROCESSES ?= 2

# The quick book is built first: each chapter executes once, and the notebook checks then compare
# those executed notebooks with tests/reference (PRUNEPLAST_EXECUTED) instead of re-running them.
# Its pages execute two at a time, each in a process of its own with one torch thread (--jobs 2).
# Its set-up runs as a sub-make with two jobs: on a fresh machine the Python install (pip) and
# Debian's Chromium (apt-get) download side by side, then the compiled step builds beside the lint.
test:
	@$(MAKE) --no-print-directory -j2 test-setup lint
	@set -e; start=$$(date +%s); \
	echo "== quick book: every notebook at the quick profile, warnings as errors =="; \
	$(VENV)/bin/pruneplast book --profile quick --build-dir _build/test --jobs 2; \
	t1=$$(date +%s); \
	echo "== engine tests and notebook checks =="; \
	PRUNEPLAST_EXECUTED=$(CURDIR)/_build/test/exec/quick $(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile \
		--no-loadscope-reorder --durations=12 tests; \
	end=$$(date +%s); \
	echo "make test finished: set-up $$(( start - $(MAKE_START) )) s, quick book $$(( t1 - start )) s, tests $$(( end - t1 )) s, total $$(( end - $(MAKE_START) )) s"

test-setup: $(INSTALLED) widgets-js browser fused-step

# The inner loop (at most 2 minutes on two cores): lint, types and every test not marked slow.
# Slow tests (@pytest.mark.slow: they execute chapters, start worker processes or a Dask cluster,
# train at the full task's size or drive a browser) run in make test only.
check: lint
	@echo "== unit tests (not slow) =="
	@$(PY) -m pytest -n $(TEST_PROCESSES) --dist loadfile -q -m "not slow" --durations=5 tests
	@echo "make check finished in $$(( $$(date +%s) - $(MAKE_START) )) s"

# Lint, format and type checks (configured in pyproject.toml); fast, so make test runs them first.
lint: $(INSTALLED)
	@echo "== lint: ruff check, ruff format --check, mypy =="
	@$(VENV)/bin/ruff check pruneplast tests benchmarks
	@$(VENV)/bin/ruff format --check pruneplast tests benchmarks
	@$(VENV)/bin/mypy pruneplast

book: $(INSTALLED) widgets-js
	$(VENV)/bin/pruneplast book --profile $(PROFILE)

# The book built by `make book` (same PROFILE), printed by headless Chromium as one PDF; nothing is
# executed again (pruneplast/booktools/pdf.py says why Chromium rather than LaTeX).
.PHONY: pdf
pdf: $(INSTALLED) browser
	$(VENV)/bin/pruneplast pdf --profile $(PROFILE)

# Every chapter (make test runs three) executed under another float path on this machine, against
# the same references; see tests/book/test_float_paths.py.
test-float-path: $(INSTALLED)
	PRUNEPLAST_FLOAT_PATH_CHAPTERS="01_model_and_task 02_pruning_cliff 03_consolidation 04_regimens 05_treatments 06_longitudinal_relapse explorer" \
		$(PY) -m pytest -v tests/book/test_float_paths.py

reference: $(INSTALLED)
	$(VENV)/bin/pruneplast reference

# (bench and explore targets go here)
# The ipywidgets embed bundle the book serves itself (npm pack of a pinned, integrity-checked
# package into .cache/webassets; see pruneplast/booktools/webassets.py).
widgets-js: $(INSTALLED)
	@$(PY) -m pruneplast.booktools.webassets

# Debian's Chromium for the browser tests (tests/book/test_browser.py) and make pdf, and poppler-utils
# (pdfinfo, pdftoppm) with which tests/booktools/test_pdf.py reads the PDF; installed once, as root, with
# apt-get. Where that is impossible the tests that need them skip and say why.
browser:
	@if [ -x /usr/bin/chromium ] && command -v pdftoppm >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "== installing Chromium and poppler-utils (Debian) for the browser tests and make pdf =="; \
		( apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver poppler-utils ) \
			|| echo "could not install them: the tests that need them will be skipped"; \
	else echo "no /usr/bin/chromium or pdftoppm and no apt-get as root: the browser and PDF tests will be skipped"; fi

# make explore [EXPLORE_PORT=8866] [EXPLORE_PROFILE=paper]: the explorer chapter, converted with
# jupytext (parameters injected, no precomputed grid), served by Voila on http://127.0.0.1:PORT/
EXPLORE_PORT ?= 8866
EXPLORE_PROFILE ?= paper
explore: $(INSTALLED)
	$(VENV)/bin/pruneplast explore --profile $(EXPLORE_PROFILE) --out _build/explore/explorer.ipynb \
		--serve $(EXPLORE_PORT)

# make lab [LAB_PORT=8888]: JupyterLab (the 'lab' extra, installed on first use) on 127.0.0.1; the
# MyST chapters open as notebooks (jupytext.toml; lab/overrides.json makes Jupytext Notebook the
# default viewer of .md files) and save back as MyST, without outputs.
LAB_PORT ?= 8888
$(VENV)/.lab: $(INSTALLED)
	$(PY) -m pip install --no-compile -e '.[book,test,lab]'
	mkdir -p $(VENV)/share/jupyter/lab/settings
	cp lab/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $@
lab: $(VENV)/.lab
	$(VENV)/bin/jupyter lab --ServerApp.ip=127.0.0.1 --ServerApp.port=$(LAB_PORT) --no-browser \
		$(if $(filter 0,$(shell id -u)),--allow-root,) notebooks/

# make bench [BENCH_ARGS="--chapters quick"]: engine speed vs the matmul limit and the common way;
# BENCH_ARGS="--book-only --build-dir DIR ..." only copies the timings of book builds found there
bench: $(INSTALLED)
	$(PY) benchmarks/bench.py $(BENCH_ARGS)

# make bench-directions: directions measured (noise drawn on both cores and a compiled CSR kernel
# from the `bench` extra, not adopted; two jobs side by side, adopted as pruneplast.parallel),
# written to benchmarks/directions.json
bench-directions: $(INSTALLED)
	$(PY) -m pip install -q --no-compile -e '.[bench]'
	$(PY) benchmarks/directions.py


clean:
	rm -rf _build runs .pytest_cache tests/reference/*.failed.ipynb
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean
	rm -rf results .cache
	@if [ "$(VENV)" = ".venv" ]; then rm -rf .venv; else echo "kept $(VENV) (not the project's own .venv)"; fi
