# Two commands set everything up on a fresh machine:
#   make demo   - venv + install + build vanilla and RA-IT datasets from the bundled sample into ./outputs/
#   make test   - venv + install + the default (offline, CPU) test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

# The CPU build of torch, installed before anything else can pull PyPI's CUDA build (the library does not pin
# torch; constraints.txt pins the version, which 2.13.0+cpu satisfies). Override for a GPU machine.
TORCH ?= torch==2.13.0+cpu
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo test test-all lint bench browser clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch alone from the CPU index (--no-deps: its dependencies come from PyPI with everything else, so an
	# unreachable extra index costs one lookup, not one per package)
	$(BIN)/pip install -q --no-deps --retries 1 --timeout 15 --extra-index-url $(TORCH_INDEX) "$(TORCH)"
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
	# gliner declares transformers<5.17 but runs on ours (tests/test_gliner_backend.py): no deps, pinned
	$(BIN)/pip install -q --no-deps -c constraints.txt gliner
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/raitner build-data examples/data/pile_ner_sample.en.jsonl --embedder minilm \
		--strategy nn.v1 --strategy diverse_nn.v1 --strategy bm25_filter.v1 \
		--license cc-by-nc-4.0 --out outputs/pile-ner-it
	$(BIN)/raitner build-data examples/data/sky_ner_sample.zh.jsonl --embedder bm25 \
		--strategy nn.v1 --strategy diverse_nn.v1 --out outputs/sky-ner-it --quiet
	@echo "Outputs: outputs/pile-ner-it and outputs/sky-ner-it (each a Hub dataset repo folder: README.md, data/, manifest.json)"

# Headless Chromium for the browser test of the Space (best effort: the test skips without it).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && \
		(apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-noto-cjk >/dev/null) || \
		echo "chromium not installed: the browser test will be skipped"; }

# Quality gates: lint (ruff), formatting (ruff format --check) and types (mypy on the package).
# FORMAT_CHECK=0 skips the format check (e.g. while a branch is mid-rewrite); `ruff format .` fixes it.
FORMAT_CHECK ?= 1
lint: install
	$(BIN)/ruff check .
	@if [ "$(FORMAT_CHECK)" = 1 ]; then $(BIN)/ruff format --check .; else echo "ruff format --check: skipped (FORMAT_CHECK=0)"; fi
	$(BIN)/mypy

test: install browser lint
	$(BIN)/python -m pytest

# Everything, including slow tests (GPU / real Hub / real teacher tiers still need their resources).
test-all: install browser
	$(BIN)/python -m pytest -m "not gpu and not hub and not external"

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf outputs .pytest_cache
