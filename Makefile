# StringCare front door.  Every target creates or reuses .venv and installs the
# pinned dependencies only when requirements*.txt or pyproject.toml changed.
#
#   make sim     the simulated battery string with its live status page
#   make test    every check (lint, types, tests on CPython and MicroPython, mpy-cross)
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
.PHONY: help sim test bench deploy fmt clean distclean

help:
	@sed -n '3,9p' Makefile | sed 's/^# \{0,1\}//'

$(STAMP): requirements.txt requirements-stubs.txt pyproject.toml tools/sh/setup-venv.sh
	@PYTHON=$(PYTHON) tools/sh/setup-venv.sh $(VENV)
	@touch $@

sim: $(STAMP)
	$(BIN)/stringcare sim --serve 127.0.0.1:8080 --speed 600x $(SIM_ARGS)

test: $(STAMP)
	@$(BIN)/python -m stringcare.dev.check $(TEST_ARGS)

bench: $(STAMP)
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
