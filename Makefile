# The only entry points (README): make book | make test | make run NB=… PROFILE=… | make bench
# Each target installs what it needs into .venv first (torch pinned to the CPU wheel on disk).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= toy
NB ?= 00_overview
# The real annotation files (never copied into the repo); CI and this machine keep them in ../shared/data.
VIDEOCLIP_DATA_DIR ?= $(abspath $(wildcard ../shared/data))
export VIDEOCLIP_DATA_DIR
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false
MATHJAX := book/_static/mathjax

.PHONY: install test book run bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,book]'
	touch $@

install: $(VENV)/.installed

# MathJax served from the built site (no CDN): npm's mathjax package, copied into _static.
$(MATHJAX)/tex-chtml.js:
	mkdir -p .cache/npm $(MATHJAX)
	npm install --silent --no-audit --no-fund --prefix .cache/npm mathjax@3
	cp -r .cache/npm/node_modules/mathjax/es5/. $(MATHJAX)/

test: install
	$(BIN)/python -m videoclip.book sync
	$(BIN)/python -m pytest -q tests notebooks --nbval-lax --nbval-cell-timeout=900 -p no:cacheprovider

book: install $(MATHJAX)/tex-chtml.js
	$(BIN)/python -m videoclip.book all --profile $(PROFILE)
	$(BIN)/jupyter-book build . -n -W --keep-going
	@echo "book: $(abspath _build/html/index.html)"

run: install
	$(BIN)/python -m videoclip.book run $(NB) --profile $(PROFILE)

bench: install
	$(BIN)/python bench/run_cpu.py

lint: install
	$(BIN)/ruff check videoclip tests notebooks bench

clean:
	rm -rf _build book/executed artifacts notebooks/*.ipynb
