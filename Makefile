# Quick start:  make train   (set up + run the main job)      make test   (set up + run the tests)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DATA   ?= data/FashionMNIST-Resplit
ARGS   ?=

.PHONY: device-kit study-pack study-unpack setup data train train-full test test-fast clean-venv report

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

$(DATA)/data.parquet: | $(VENV)/.installed
	$(PY) -m fmnist.data.prepare --out $(DATA)

data: $(DATA)/data.parquet

# The main job: the default ResNet9 run on a GPU; on a CPU-only machine the `quick` preset
# (small ResNet9, 4,096 images, 2 epochs) so it finishes in about a minute. Extra overrides: ARGS="...".
train: data
	@if $(PY) -c 'import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)'; then \
		echo "GPU found: full run"; $(PY) train.py data.dir=$(DATA) $(ARGS); \
	else \
		echo "No GPU: running the CPU-sized quick preset (make train-full runs the full 50 epochs)"; \
		$(PY) train.py +experiment=quick data.dir=$(DATA) $(ARGS); \
	fi

train-full: data
	$(PY) train.py data.dir=$(DATA) $(ARGS)

test: setup
	$(PY) -m pytest -q $(ARGS)

test-fast: setup
	$(PY) -m pytest -q -m "not slow" $(ARGS)

# The analysis of one or more sweeps and the LaTeX report (report/main.pdf; needs TeX, see README):
#   make report SWEEPS="multirun/<date>/<time>_stage1_models_<id> multirun/<date>/<time>_stage2_skip_<id>"
SWEEPS ?=
# the benchmark results the report's speed section quotes: the newest folder under docs/bench/ (BENCH= for none)
BENCH  ?= $(lastword $(sort $(wildcard docs/bench/*/)))
comma  := ,
empty  :=
space  := $(empty) $(empty)
report: $(if $(strip $(SWEEPS)),setup)  # without SWEEPS: the usage line, before any install
	@test -n "$(strip $(SWEEPS))" || { echo 'usage: make report SWEEPS="multirun/<date>/<time>_<name>_<id> ..."' >&2; exit 2; }
	$(PY) analyze.py 'sweep_dir=[$(subst $(space),$(comma),$(strip $(SWEEPS)))]' report=true \
	  $(if $(strip $(BENCH)),bench_dir=$(strip $(BENCH))) $(ARGS)

# What a session on the lent GPU machine carries (it reaches no package index): .whl/ holds the packages its
# image lacks as Python 3.12 wheels (the versions installed here; pytest-timeout for the ini's test timeout),
# .devdata/raw/ the raw Fashion-MNIST files.
# There: bash scripts/device_session.sh check|bench|study (see the script).
DEVICE_PKGS = hydra-core omegaconf hydra-submitit-launcher submitit pytest-timeout
device-kit: setup
	rm -rf .whl && mkdir -p .whl .devdata/raw
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
		-d .whl $$($(PY) -c 'import importlib.metadata as m; print(" ".join(f"{p}=={m.version(p)}" for p in "$(DEVICE_PKGS)".split()))')
	$(PY) -m pip wheel -q --no-deps -w .whl antlr4-python3-runtime==$$($(PY) -c 'import importlib.metadata as m; print(m.version("antlr4-python3-runtime"))')
	cp $$($(PY) -c 'from fmnist.data.prepare import find_raw_dir; print(find_raw_dir())')/*-ubyte* .devdata/raw/
	@du -sh .whl .devdata

# The committed study outgrows the device's 64 MiB working-tree limit. Before a study call: make study-pack (parks
# multirun/study in the ignored .aside/, writes the .devstudy/ kit of its summaries: carry .devstudy). After it:
# make study-unpack PARTS="<the returned study.tar.gz.part-* files, or their folder>" (see fmnist/study_transfer.py).
PARTS ?=
study-pack: setup
	$(PY) -m fmnist.study_transfer pack

study-unpack: setup
	$(PY) -m fmnist.study_transfer unpack $(PARTS)
