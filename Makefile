# Two commands do everything (see README.md):
#   make book   install into .venv, execute the chapters, write _build/html
#   make test   the whole test suite (unit tests, pairing and chapter checks,
#               every chapter executed by nbmake under each backend it
#               declares, the site built with warnings as errors and checked
#               in a headless browser, every chapter's Colab edition run in a
#               Colab-like runtime)
#   make publish  build the site in the cpu or gpu profile and push it to the
#               gh-pages branch (the Colab edition and dlbook's wheel go with it)
# Profiles and data come from the environment: DLBOOK_PROFILE, DLBOOK_DATA_MIRROR.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PYTEST := $(PY) -m pytest -p no:cacheprovider
STAMP  := $(VENV)/.installed-dlbook
NBMAKE := --nbmake --nbmake-timeout=1800 --durations=0 --durations-min=1
# Tests and chapters run JOBS at a time (pytest-xdist; a chapter's kernel is
# mostly one busy core). JOBS=1 runs them one after another.
JOBS   ?= 2
XDIST  := $(if $(filter-out 0 1,$(JOBS)),-n $(JOBS) --dist load,)

.PHONY: install book publish test unit chapters site colab sync check clean floors seeds

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "Python 3.10+ needed"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip uv
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/uv pip install --quiet --compile-bytecode -e ".[test]" \
	  || { echo "uv could not install the book; trying pip"; $(PY) -m pip install --quiet -e ".[test]"; }
	touch $(STAMP)

install: $(STAMP)

book: $(STAMP)
	$(PY) tests/harness.py claim-cache
	$(PY) tests/results_page.py  # the results page's tables and plots, from results/recorded_runs.csv
	$(VENV)/bin/jupyter-book build . -W --keep-going
	$(PY) tests/colab_edition.py build
	@echo "The book is in _build/html: open _build/html/index.html"

# The published site: executed in the cpu or gpu profile (never smoke, whose
# numbers mean nothing), then pushed to gh-pages with the Colab edition and the
# wheel the chapters' bootstrap cell installs; the tag v<version> is the
# bootstrap's fallback. Needs push access to the repository.
publish: $(STAMP)
	@case "$${DLBOOK_PROFILE:-auto}" in smoke) \
	  echo "make publish: DLBOOK_PROFILE=smoke; the published site is built in cpu or gpu"; exit 1;; esac
	$(MAKE) book
	version=$$($(PY) -c 'import dlbook; print(dlbook.__version__)'); \
	  git tag "v$$version" 2>/dev/null || true; git push origin "v$$version"
	$(VENV)/bin/ghp-import --no-jekyll --push --force _build/html

unit: $(STAMP)
	$(PYTEST) $(XDIST) --durations=10 tests/unit tests/test_chapters.py tests/test_harness.py tests/test_colab_edition.py

chapters: $(STAMP)
	$(PY) tests/harness.py stage
	$(PYTEST) $(XDIST) $(NBMAKE) --overwrite _nbexec/tensorflow _nbexec/jax
	$(PY) tests/harness.py cache tensorflow

site: $(STAMP)
	$(PYTEST) tests/site

# Every chapter's Colab edition in a fresh environment of Colab's package
# versions, dlbook installed by the bootstrap from the site served on loopback,
# the data mirror served over HTTP (needs `make site` first).
colab: $(STAMP)
	DLBOOK_COLAB_LANES=$(JOBS) $(PYTEST) -v --durations=0 tests/colab

test: unit chapters site colab

# Re-pair one chapter (jupytext --sync), then execute and check it under each
# backend it declares:
#   make check CH=01_backprop        (add DLBOOK_PROFILE=cpu for the laptop profile)
check: $(STAMP)
	$(PY) tests/harness.py run $(CH)

# Execute one chapter under N consecutive seeds (from START, default 1234) in
# PROFILE (default smoke; BACKEND=jax for the JAX backend): the pass rate, each
# failing assert, and the spread (mean, min, max) of every glued figure; one row
# per (seed, figure) in results/seeds/<chapter>-<profile>.csv.
#   make seeds CH=01_backprop N=20 PROFILE=smoke
seeds: $(STAMP)
	$(PY) tests/seeds.py $(CH) --n $(or $(N),5) --profile $(or $(PROFILE),smoke) \
	  $(if $(START),--start $(START)) $(if $(BACKEND),--backend $(BACKEND))

# Re-pair every chapter after editing its .md (the .md is the source).
sync: $(STAMP)
	$(VENV)/bin/jupytext --sync chapters/[0-9]*.md

clean:
	rm -rf _build _nbexec

# The book at the oldest versions pyproject.toml allows (a fresh uv venv in
# _build/floors-venv, --resolution lowest-direct): unit tests, then chapters
# 01-03 and 11 in the smoke profile. See tests/floors.py (--chapters, --skip-install).
floors:
	$(PYTHON) tests/floors.py
