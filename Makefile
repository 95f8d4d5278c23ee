# Two commands on a fresh machine: `make demo` (install, then run the bundled example) and
# `make test`. torch is pinned and installed first: an unpinned torch (pulled in by snorkel)
# brings gigabytes of CUDA wheels. Every other package is held to constraints.txt, so a fresh
# install has the libraries the committed benchmark figures were measured with.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
TORCH = torch==2.13.0

.PHONY: install demo test browser clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	touch $@

# Chromium for the browser tests comes from Debian; Playwright is told to use it and never
# downloads a browser of its own.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else echo "chromium missing: run 'sudo apt-get install -y chromium' for the browser tests"; fi; }

# The main job: check the example's rules, then serve its annotation page on 127.0.0.1:8080.
demo: install
	$(BIN)/bootstrap check examples/diseases/patterns.jsonl examples/diseases/texts.jsonl
	$(BIN)/bootstrap examples/diseases/patterns.jsonl examples/diseases/texts.jsonl \
		--lfs examples/diseases/lfs.py --dataset diseases-demo

test: install browser
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache
