# make run   - install, migrate, load the quizzes, start Redis (if needed), a Celery worker and the web server
# make test  - install, check the layering (lint-imports, contracts in .importlinter) and the types (mypy, mypy.ini),
#              then run the whole test suite (real PostgreSQL/SQLite, Redis, Celery, Chromium)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000

.PHONY: install run typecheck test lint-imports bench bench-e2e soak check clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing Python dependencies into $(VENV) (torch is pinned to the 2.13.0 CPU build)..."
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet --progress-bar off -r requirements.txt
	@touch $@

run: install
	$(PY) -m config.devstack --port $(PORT)

# mypy (mypy.ini): the Django and DRF plugins load config.settings.test; the cache in .mypy_cache makes a re-run
# take seconds.
typecheck: install
	$(PY) -m mypy

# The fault suite (tests/faults) kills workers and stops private Redis and PostgreSQL servers: it runs last, in a
# pytest process of its own, so nothing it leaves behind can reach the other tests.
test: install lint-imports typecheck
	$(PY) -m pytest --ignore=tests/faults $(PYTEST_ARGS)
	$(PY) -m pytest tests/faults $(PYTEST_ARGS)

# Dependencies run one way (sandbox <- content <- courses <- grading <- reports <- ways in <- LTI): a broken
# contract fails here, before any test runs.
lint-imports: install
	$(VENV)/bin/lint-imports

bench: install
	$(PY) -m grader.sandbox.bench

bench-e2e: install
	$(PY) -m grader.bench_e2e

# Ten minutes at a steady rate: per-minute latency and memory of gunicorn, Celery and the zygotes; fails on growth.
# SOAK_ARGS="--database-url postgres://... --minutes 3" to change it.
soak: install
	$(PY) -m grader.bench_soak $(SOAK_ARGS)

check: install
	$(PY) manage.py check
	$(PY) manage.py sandbox_check

clean:
	rm -rf $(VENV) var db.sqlite3 .dev-secret-key
