# `make check`: what CI runs (scripts/check); `make lint` and `make types` are its first steps.
.PHONY: check lint types test

check:
	scripts/check

lint types:
	scripts/check --no-tests

test:
	python -m pytest
