# ragent: two set-up commands. `make run` (the main job on the embedded defaults) and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3.11
VENV := .venv
RAGENT := $(VENV)/bin/ragent
MODEL ?= qwen2.5-coder-1.5b
TEST_MODEL ?= qwen2.5-coder-0.5b
WS ?= demo
QUESTION ?= What is the rated output of the NW-200 inverter, and how long is the warranty?
# pip on this machine warns about optional local indexes that do not exist; keep the output readable
QUIET_PIP := { grep -v "is ignored: it is neither a file nor a directory" || true; }

.PHONY: run test venv llm-venv model test-model lint typecheck serve stop bench clean help browser-deps ocr-deps postgres-deps

help:
	@echo "make run   - set up everything, start vLLM (CPU), ingest examples/, ask a question"
	@echo "make test  - set up the venvs and run ruff, mypy, import-linter and pytest"

$(VENV)/.ragent-installed: pyproject.toml
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q torch==2.13.0 2>&1 | $(QUIET_PIP)   # the CPU wheel; before anything pulls CUDA torch
	$(VENV)/bin/pip install -q -e ".[dev]" 2>&1 | $(QUIET_PIP)
	touch $@

venv: $(VENV)/.ragent-installed

llm-venv:
	bash scripts/setup_llm.sh .venv-llm

model: llm-venv
	.venv-llm/bin/python scripts/prepare_model.py $(MODEL) --home var

test-model: llm-venv
	.venv-llm/bin/python scripts/prepare_model.py $(TEST_MODEL) --home var

run: venv model ocr-deps
	$(RAGENT) llm serve --model $(MODEL)
	$(RAGENT) ingest examples/ --workspace $(WS)
	$(RAGENT) ask "$(QUESTION)" --workspace $(WS)

serve: venv model
	$(RAGENT) llm serve --model $(MODEL)

stop: venv
	$(RAGENT) llm stop

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: venv
	$(VENV)/bin/mypy

browser-deps:  # Debian's Chromium + chromedriver for the UI browser test (never `playwright install`)
	test -x /usr/bin/chromium || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver)

ocr-deps:  # Debian's Tesseract (+ English) for OCR of scanned pages and text in images
	test -x /usr/bin/tesseract || (apt-get update -qq && apt-get install -y -qq tesseract-ocr tesseract-ocr-eng)

postgres-deps:  # Debian's PostgreSQL server binaries: the test fixture runs initdb + postgres on a temporary directory
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq postgresql)

test: venv test-model browser-deps ocr-deps postgres-deps lint typecheck
	RAGENT_TEST_LLM_MODEL=$(TEST_MODEL) $(VENV)/bin/pytest -q --durations=15

clean:
	rm -rf $(VENV) .venv-llm var .mypy_cache .ruff_cache .pytest_cache
