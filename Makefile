# Two commands set everything up on a fresh machine:
#   make demo   - venv + install + build vanilla and RA-IT datasets from the bundled sample into ./outputs/
#   make test   - venv + install + the default (offline, CPU) test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-all bench browser clean

$(BIN)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[dev]"
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

test: install browser
	$(BIN)/python -m pytest

# Everything, including slow tests (GPU / real Hub / real teacher tiers still need their resources).
test-all: install browser
	$(BIN)/python -m pytest -m "not gpu and not hub and not external"

bench: install
	$(BIN)/python bench/run_all.py

clean:
	rm -rf outputs .pytest_cache
