# The two commands of the README: `make run` and `make test`. Only Python 3.11, git and make needed.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
DB := instance/gridmap.db

.PHONY: run test install demo bench translations messages clean

run: $(STAMP) translations
	@test -f $(DB) || $(BIN)/gridmap demo
	$(BIN)/flask --app gridmap run --host 127.0.0.1 --port 5000

# One pytest process per core (pytest-xdist); a module's tests stay together on one process, so the
# demos and servers a module builds once are built once.
test: $(TEST_STAMP) translations
	$(BIN)/pytest -n auto --dist loadfile $(PYTEST_ARGS)

install: $(STAMP)

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)

$(STAMP): setup.cfg pyproject.toml | $(VENV)/bin/activate
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	$(BIN)/gridmap warm  # numba compiles here, not on a user's first map
	touch $@

$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $@

translations: $(STAMP)
	$(BIN)/pybabel -q compile -d gridmap/translations

# After adding or changing a user-visible string: collect every marked message (_, N_, _l …) into the
# catalogue, then translate the new empty msgstrs; tests/test_catalogue.py fails until each has one.
messages: $(STAMP)
	$(BIN)/pybabel -q extract -F babel.cfg -k _l -k lazy_gettext -o /tmp/gridmap-messages.pot .
	$(BIN)/pybabel -q update -i /tmp/gridmap-messages.pot -d gridmap/translations --no-fuzzy-matching --ignore-obsolete -w 76

demo: $(STAMP) translations
	$(BIN)/gridmap demo --force

bench: $(TEST_STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/import_bench.py
	$(PY) bench/engine_bench.py
	$(PY) bench/routing_bench.py
	$(PY) bench/partition_bench.py

clean:
	rm -rf $(VENV) instance
