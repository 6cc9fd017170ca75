## make run    — set up and run the bot on the embedded default (SQLite, example config)
## make test   — set up everything (apt packages, venv, services started by the tests) and test
## make lint   — ruff + mypy + import-linter (the layering contracts in pyproject.toml)
## make bench  — benchmarks (bench/), printed as tables
.PHONY: run test lint bench setup help

export GITHUB_WEBHOOK_SECRET ?= dev-secret-change-me
export GITHUB_TOKEN ?=

help:
	@grep '^##' Makefile | sed 's/^## //'

setup:
	./scripts/setup.sh

run: setup
	.venv/bin/wercker-bot serve --config config.example.toml

test:
	./scripts/setup.sh --tests
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports
	.venv/bin/pytest -q -rs

lint:
	.venv/bin/ruff check .
	.venv/bin/mypy
	.venv/bin/lint-imports

bench:
	./scripts/setup.sh --tests
	.venv/bin/python bench/run_all.py
