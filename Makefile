# StringCare front door.  Every target creates or reuses .venv and installs the
# pinned dependencies only when requirements*.txt or pyproject.toml changed.
#
#   make sim     the simulated battery string with its live status page
#   make test    every check (lint, types, tests on CPython and MicroPython, mpy-cross)
#   make test-loaded  the same with two CPU burners beside it (a busy machine)
#   make bench   benchmarks -> build/bench/results.json and a table
#   make deploy  flash a board (BOARD=rp2040_module PORT=/dev/ttyACM0)

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stringcare-installed
SIM_ARGS ?=
TEST_ARGS ?=
BENCH_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help sim test test-loaded bench deploy fmt clean distclean debs-test debs-bench

help:
	@sed -n '4,8p' Makefile | sed 's/^# \{0,1\}//'

$(STAMP): requirements.txt requirements-stubs.txt pyproject.toml tools/sh/setup-venv.sh
	@PYTHON=$(PYTHON) tools/sh/setup-venv.sh $(VENV)
	@touch $@

# The demo: 2 strings x 16 blocks, balancing, 600x accelerated, status page on :8080;
# it runs for 30 simulated days unless Ctrl-C ends it.
sim: $(STAMP)
	$(BIN)/stringcare sim --scenario demo --duration 30d --speed 600x --serve 127.0.0.1:8080 $(SIM_ARGS)

# Debian packages the checks use (installed when missing; see tools/sh/need-deb.sh)
debs-test:
	@tools/sh/need-deb.sh chromium chromium "browser tests of the web interface"
	@tools/sh/need-deb.sh chromedriver chromium-driver "selenium drives chromium in the browser tests"
	@tools/sh/need-deb.sh qemu-system-arm qemu-system-arm "the emulated Cortex-M0 test stage"

debs-bench:
	@tools/sh/need-deb.sh valgrind valgrind "instruction counts in the bus benchmark"

test: $(STAMP) debs-test
	@$(BIN)/python -m stringcare.dev.check $(TEST_ARGS)

# The suite must hold on a busy machine: the same checks with two CPU-bound processes
# running beside them (docs/development.md gives the wall times).
test-loaded: $(STAMP) debs-test
	@tools/sh/with-burners.sh 2 $(BIN)/python -m stringcare.dev.check $(TEST_ARGS)

bench: $(STAMP) debs-bench
	@$(BIN)/stringcare bench $(BENCH_ARGS)

deploy: $(STAMP)
	$(BIN)/stringcare deploy --board $(BOARD) --port $(PORT) $(DEPLOY_ARGS)

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf build .pytest_cache .mypy_cache .ruff_cache .hypothesis

distclean: clean
	rm -rf $(VENV)
