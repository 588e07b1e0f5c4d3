# SmolLM3 training recipe. Quickstart: `make smoke` (whole tiny pipeline on CPU), `make test` (test suite).
# Every stage target takes RECIPE=<recipe dir> (default recipes/tiny) and OVERRIDES="key=value ...".
SHELL := /bin/bash
RECIPE ?= recipes/tiny
OVERRIDES ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAUNCHER ?= local
DRY_RUN ?=
# RESUME=fresh (set the stage's run directory aside, start over) or RESUME=continue (continue its checkpoint
# although the training recipe changed; recorded in the manifest). Default: refuse a changed recipe.
RESUME ?=
RESUME_FLAG := $(if $(RESUME),--$(RESUME))
NANOTRON_STAGES := pretrain-stage1 pretrain-stage2 pretrain-stage3 longctx-32k longctx-64k
STAGES := data synth prefs merge
TRL_STAGES := midtrain sft apo

.PHONY: help setup test test-fast lint golden golden-smoke smoke all status report bench plan check show clean $(STAGES) $(TRL_STAGES) $(NANOTRON_STAGES) eval eval-compare eval-trajectory export-nanotron data-report

help:
	@echo "make smoke                 run the whole pipeline on the tiny recipe (CPU, minutes)"
	@echo "make test                  run the test suite (slow tests included)"
	@echo "make lint                  ruff: line length, import order, unused imports (pyproject.toml)"
	@echo "make golden                re-record tests/golden/ when a change is meant to move the tiny losses"
	@echo "make golden-smoke          re-record the final metrics of an uninterrupted tiny run (the smoke drill's reference)"
	@echo "make bench                 every benchmark under bench/; rewrites bench/results.md"
	@echo "make report RECIPE=recipes/tiny       runs/<run>/report.md: each stage's measured effect, plots, eval"
	@echo "make plan RECIPE=recipes/smollm3-3b    batch, parallelism, steps, tokens, GPU-hours, memory per stage"
	@echo "make <stage> RECIPE=... OVERRIDES='optimizer.lr=3e-4'   one stage: $(STAGES) $(TRL_STAGES) $(NANOTRON_STAGES) eval"
	@echo "make pretrain-stage1 RECIPE=recipes/smollm3-3b LAUNCHER=slurm [DRY_RUN=1]   sbatch for the recipe's nodes"
	@echo "make pretrain-stage1 ... RESUME=fresh|continue   after a recipe change: start over, or continue its checkpoint"
	@echo "make all RECIPE=... LAUNCHER=slurm; make status   the pipeline as dependent Slurm jobs, and their state"
	@echo "make data-report RECIPE=...   what each stage's mixture will draw from every source"
	@echo "make export-nanotron STAGE=pretrain-stage1 RECIPE=...   the stage as a config for the authors' nanotron"
	@echo "make eval MODEL=<HF folder> SUITE=tiny [DRY_RUN=1]   lighteval on one model; make eval-compare [RESULTS=...]"
	@echo "make eval-trajectory RUN=runs/tiny [RELEASED_DIR=...]   your stages vs the released checkpoints, by tokens"
	@echo "make show STAGE=pretrain-stage1 RECIPE=...   the resolved stage recipe as JSON"

# Idempotent: reinstalls only when requirements.txt or constraints.txt change. evalplus and bfcl-eval pin what
# clashes with the rest (protobuf, numpy): installed without their dependencies into .venv/nodeps, which
# eval/code_tasks.py and eval/bfcl.py put on sys.path.
setup: $(STAMP)
$(STAMP): requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -r requirements.txt 2> >(grep -v "is ignored: it is neither" >&2)
	$(PY) -m pip check
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --upgrade --target $(VENV)/nodeps evalplus==0.3.1 bfcl-eval==2026.3.23 2> >(grep -v "is ignored: it is neither" >&2)
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

test-fast: setup
	$(PY) -m pytest -q -m "not slow"

lint: setup
	$(PY) -m ruff check .

# The golden losses of the short tiny nanotron run (tests/golden/): refresh only when a change is meant to move them.
golden: setup
	SMOLLM3_REFRESH_GOLDEN=1 $(PY) -m pytest -q tests/test_pretrain_stages.py -k golden

# The final metrics of an uninterrupted `make smoke` in a scratch directory (tests/golden/smoke_metrics.json): the
# reference of the drill that kills the pipeline at a random point (tests/test_smoke.py). About 7 minutes.
golden-smoke: setup
	SMOLLM3_REFRESH_GOLDEN=1 $(PY) -m pytest -q tests/test_smoke.py

smoke: setup
	$(MAKE) --no-print-directory all RECIPE=recipes/tiny

# LAUNCHER=slurm: one Slurm job per incomplete stage, each after the jobs of its inputs (pipeline/jobs.py);
# `make status` follows them. pipeline/local_slurm.sh start gives this machine a two-node cluster to try it on.
all: setup
ifeq ($(LAUNCHER),slurm)
	$(PY) -m pipeline all $(RECIPE) $(OVERRIDES) --launcher slurm
else
	$(PY) -m pipeline all $(RECIPE) $(OVERRIDES)
	$(PY) -m pipeline report $(RECIPE) $(OVERRIDES)
endif

status: setup
	$(PY) -m pipeline status $(RECIPE) $(OVERRIDES)

# Every benchmark under bench/ (a few minutes on 2 cores); rewrites bench/results.md (ratios, machine, date).
bench: setup
	$(PY) bench/run_all.py

# runs/<run>/report.md: what each stage did, loss / LR plots, plan, mixtures, eval beside the published numbers
report: setup
	$(PY) -m pipeline report $(RECIPE) $(OVERRIDES)

plan: setup
	$(PY) -m recipes plan $(RECIPE) $(OVERRIDES)

check: setup
	$(PY) -m recipes check $(RECIPE) $(OVERRIDES)

show: setup
	$(PY) -m recipes show $(RECIPE)/$(STAGE).yaml $(OVERRIDES)

$(STAGES): setup
ifeq ($(LAUNCHER),slurm)
	$(PY) -m pipeline launch $(RECIPE)/$@.yaml $(OVERRIDES) --launcher slurm $(if $(DRY_RUN),--dry-run) $(RESUME_FLAG)
else
	$(PY) -m pipeline run $(RECIPE)/$@.yaml $(OVERRIDES) $(RESUME_FLAG)
endif

# Training stages. Nanotron stages (pretrain-*, longctx-*) run under torchrun (CPU + gloo for tiny); TRL stages
# (midtrain, sft, apo) run in place on one process, through accelerate + DeepSpeed ZeRO-3 on several GPUs.
# LAUNCHER=slurm writes (and submits) an sbatch script for the recipe's nodes; DRY_RUN=1 prints it instead.
$(TRL_STAGES) $(NANOTRON_STAGES): setup
ifeq ($(LAUNCHER),slurm)
	$(PY) -m pipeline launch $(RECIPE)/$@.yaml $(OVERRIDES) --launcher slurm $(if $(DRY_RUN),--dry-run) $(RESUME_FLAG)
else
	$(PY) -m pipeline run $(RECIPE)/$@.yaml $(OVERRIDES) $(RESUME_FLAG)
endif

# Per stage: source, category, weight, tokens available / drawn, epochs, category shares (warns on over-repetition).
data-report: setup
	$(PY) -m pretrain.data.report $(RECIPE) $(OVERRIDES)

# STAGE as a config for the authors' nanotron (pretrain/export_nanotron.py): CHECKPOINTS_ROOT chains it to the
# previous stage's last checkpoint, DATA_ROOT holds the authors' tokenized folders, EVAL_ROOT the lighteval
# block's paths, OUT the file to write (default: stdout).
export-nanotron: setup
	@test -n "$(STAGE)" || { echo "make export-nanotron: set STAGE (pretrain-stage1 ... longctx-64k)" >&2; exit 2; }
	$(PY) -m pretrain export-nanotron $(RECIPE)/$(STAGE).yaml $(OVERRIDES) $(if $(OUT),-o $(OUT)) \
		$(if $(CHECKPOINTS_ROOT),--checkpoints-root $(CHECKPOINTS_ROOT)) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) \
		$(if $(EVAL_ROOT),--eval-root $(EVAL_ROOT))

# `make eval` scores every checkpoint of the recipe's run; `make eval MODEL=<HF folder or Hub id> SUITE=tiny`
# scores one model (results in OUT, default runs/eval/<model name>/<suite>). The published suites (smollm3-*) run
# on the authors' backend, vllm, with the model_args of eval/suites/published.yaml (SET="tensor_parallel_size=1"
# changes one); DRY_RUN=1 prints every task spec with its backend and settings and loads nothing.
SUITE ?= tiny
BACKEND ?= $(if $(filter smollm3-%,$(SUITE)),vllm,transformers)
SET ?=
eval: setup
ifdef MODEL
	$(PY) -m eval run --model $(MODEL) --suite $(SUITE) --backend $(BACKEND) $(foreach s,$(SET),--set $(s)) \
		--output-dir $(or $(OUT),runs/eval/$(notdir $(MODEL))/$(SUITE)) $(if $(DRY_RUN),--dry-run)
else
	$(PY) -m pipeline run $(RECIPE)/eval.yaml $(OVERRIDES)
endif

# Every published SmolLM3 figure beside the measured ones (± stderr) or the reason it was not run. Default: every
# checkpoint the recipe's eval stage scored (runs/<run>/eval); RESULTS="folder ..." for others, OUT=file.md.
eval-compare: setup
	$(PY) -m eval compare $(or $(RESULTS),$(or $(SMOLLM3_RUNS),runs)/$(notdir $(RECIPE))/eval) $(if $(OUT),-o $(OUT))

# Your stage checkpoints beside the released SmolLM3 ones, matched by tokens seen: RUN=runs/<run> (default the
# recipe's), SUITE (default tiny), RELEASED_DIR=<folder of revision-named HF folders or YAML> for air-gapped
# clusters, else the Hub (HuggingFaceTB/SmolLM3-3B-checkpoints); writes RUN/trajectory/trajectory.{md,json,png}.
eval-trajectory: setup
	$(PY) -m eval trajectory $(or $(RUN),$(or $(SMOLLM3_RUNS),runs)/$(notdir $(RECIPE))) --suite $(SUITE) \
		$(if $(RELEASED_DIR),--released-dir $(RELEASED_DIR)) $(if $(OUT),--out $(OUT))

clean:
	rm -rf runs/$(notdir $(RECIPE))
