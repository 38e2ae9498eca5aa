# The only entry points (README): make book | make test | make run NB=… PROFILE=… | make bench |
# make rehearsal
# Each target installs what it needs into .venv first (torch pinned to the CPU wheel on disk), except
# in an active conda environment that already has PyTorch (environment.yml on a GPU box): there they
# use that environment's python and make no .venv.

PYTHON ?= python3
VENV := .venv
# The conda environment's python when it has torch installed, else empty (then: .venv; `make ENV_PYTHON=`
# forces .venv).
ENV_PYTHON ?= $(shell [ -n "$(CONDA_PREFIX)" ] && "$(CONDA_PREFIX)/bin/python" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" >/dev/null 2>&1 && echo "$(CONDA_PREFIX)/bin/python")
ifeq ($(ENV_PYTHON),)
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
else
BIN := $(patsubst %/,%,$(dir $(ENV_PYTHON)))
INSTALLED := env-check
endif
PROFILE ?= toy
NB ?= 00_overview
# The real annotation files (never copied into the repo); CI and this machine keep them in ../shared/data.
VIDEOCLIP_DATA_DIR ?= $(abspath $(wildcard ../shared/data))
export VIDEOCLIP_DATA_DIR
# Offline by default (the toy profile needs no hub). The paper profile's bert-base-uncased comes from
# the hub on first use: `make run ... HF_HUB_OFFLINE=0` lifts both switches.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= $(HF_HUB_OFFLINE)
export TOKENIZERS_PARALLELISM ?= false
# `make book PROFILE=released MODEL=converted/`: the converted released checkpoint that the zero-shot
# chapters evaluate (params/released: model_dir $VIDEOCLIP_MODEL).
ifneq ($(MODEL),)
export VIDEOCLIP_MODEL := $(abspath $(MODEL))
endif
MATHJAX := book/_static/mathjax

.PHONY: install env-check test book run rehearsal world-v1 bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test,book,faiss]'
	touch $@

# The conda environment installs the package itself (environment.yml): check, never pip into it.
env-check:
	@$(BIN)/python -c "import videoclip, faiss, papermill, jupytext" || { echo "make: $(BIN)/python \
	lacks the package or its book tools; in the conda environment run: pip install -e '.[test,book]'" >&2; exit 1; }

install: $(INSTALLED)

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

# Every chapter on the paper and released profiles, on a data root built from the real annotation
# files with random features of their real sizes (book/paper_profile.md §5); not part of `make test`.
rehearsal: install
	$(BIN)/python -m videoclip.book.rehearsal --annotations "$(VIDEOCLIP_DATA_DIR)" --out artifacts/rehearsal

# The scorecard's world-v1 appendix (design §13.1): the zero-shot chapters on the toy world as it was
# before v2, their results kept in book/world_v1.json (committed; read by chapter 14). Not part of `make book`.
WORLD_V1 := artifacts/world_v1
world-v1: install
	for nb in 05 06 07 08; do $(BIN)/python -m videoclip.book run $$nb --profile toy --out $(WORLD_V1)/executed \
	  -p world_preset=toy_v1 -p work_dir=../$(WORLD_V1) || exit 1; done
	$(BIN)/python -c "from videoclip.book.scorecard import save_collected as s; print(s('$(WORLD_V1)/results', 'book/world_v1.json'))"

bench: install
	$(BIN)/python bench/run_cpu.py

lint: install
	$(BIN)/ruff check videoclip tests notebooks bench

clean:
	rm -rf _build book/executed artifacts notebooks/*.ipynb
