# Two commands do everything on a fresh machine with Python 3.11 and pip:
#   make bench   create .venv, install, run the quick comparison and print its table
#   make test    create .venv, install, run the test suite
#   make lint    ruff's lint and format checks (CI runs it after make test)
#   make report  re-render results/ (tables, figures, README.md, index.html) from the committed runs
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_ROOT ?= $(if $(EPINET_DATA_ROOT),$(EPINET_DATA_ROOT),../shared/data)
JOBS ?= 2

.PHONY: bench test lint paper report perf install

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch and torchvision first, pinned to the builds that pip finds on this machine's disk
	$(BIN)/pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

bench: install
	$(BIN)/epinet-bench sweep benchmarks/configs/quick.yaml --data-root $(DATA_ROOT) --jobs $(JOBS) --results results/quick

test: install
	EPINET_DATA_ROOT=$(DATA_ROOT) $(BIN)/python -m pytest -q

# ruff comes with the dev extra; its settings are in pyproject.toml ([tool.ruff])
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

paper: install
	$(BIN)/epinet-bench sweep benchmarks/configs/paper.yaml --data-root $(DATA_ROOT) --jobs $(JOBS)

# tables, figures, results/README.md, results/index.html and the README's generated blocks, from the committed runs
report: install
	$(BIN)/epinet-bench report results --html --update-readme README.md

perf: install
	$(BIN)/epinet-bench perf --data-root $(DATA_ROOT) --out results
