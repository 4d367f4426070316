# Air-Tasks developer entry points. A fresh clone needs only `make up` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins packages that clash with Airflow's: its own venv (.ci/tools-requirements.txt).
TOOLS := $(VENV)/tools
TOOLS_STAMP := $(TOOLS)/.installed
CHECKOV := BC_SKIP_MAPPING=TRUE CKV_SKIP_PACKAGE_UPDATE_CHECK=true $(TOOLS)/bin/checkov --framework terraform --skip-download --compact --quiet
ENV ?= local
MODE ?= local
AIRFLOW_PORT ?= 8080
DAGS ?=
PYTEST_ARGS ?=

# Take hashicorp/aws from the local filesystem mirror when this machine has one.
ifneq ($(wildcard /opt/tf-plugins),)
export TF_CLI_CONFIG_FILE := $(CURDIR)/terraform.rc
else ifeq ($(wildcard $(TF_CLI_CONFIG_FILE)),)
unexport TF_CLI_CONFIG_FILE
endif
export CHECKPOINT_DISABLE := 1
export TF_IN_AUTOMATION := 1

# Python the boot scripts embed (the spot watcher): linted like the package, run on the nodes.
BOOT_PY := $(wildcard modules/swarm-boot/templates/*.py)
TF_DIRS := $(sort $(dir $(wildcard modules/*/main.tf modules/*/*/main.tf envs/*/main.tf)))
# hashicorp/google is installable where the mirror has it, where there is no mirror (public
# registry), or when AIRTASKS_GOOGLE_PROVIDER=registry; elsewhere `lint` skips validating GCP dirs.
GOOGLE_PROVIDER := $(if $(or $(wildcard /opt/tf-plugins/registry.terraform.io/hashicorp/google),$(if $(wildcard /opt/tf-plugins),,none),$(filter registry,$(AIRTASKS_GOOGLE_PROVIDER))),yes,)

.PHONY: help setup test images test-e2e lint fmt plan up down bench clean

help: ## list the targets
	@grep -hE '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

# The development tooling (dev/airtasks_dev: make up/down, the local cloud, the image builder) is
# not in the airtasks wheel; a .pth file puts dev/ on the venv's path instead.
$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; install Python 3.11 or run make PYTHON=python3"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -c 'import pathlib, sys, sysconfig; pathlib.Path(sysconfig.get_path("purelib"), "airtasks_dev.pth").write_text(sys.argv[1] + "\n")' '$(CURDIR)/dev'
	@touch $@

$(TOOLS_STAMP): .ci/tools-requirements.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --upgrade pip
	$(TOOLS)/bin/pip install --quiet -r .ci/tools-requirements.txt
	@touch $@

setup: $(STAMP) $(TOOLS_STAMP) ## create .venv (airtasks + dev tools) and .venv/tools (checkov)

test: $(STAMP) ## the whole suite (what CI runs), chain included: tests/e2e, the checks and the rest side by side
	$(BIN)/python -m tests.support.split_run $(PYTEST_ARGS)

images: $(STAMP) ## build the images the tests use (make test builds any that are missing; CI builds them first)
	$(BIN)/python -m tests.support.prebuild

test-e2e: $(STAMP) ## only the e2e tests: local cloud, boot, the cluster-in-a-box chain (root)
	$(BIN)/pytest --durations=10 -m "e2e and not bench" $(PYTEST_ARGS) tests/e2e

lint: $(STAMP) $(TOOLS_STAMP) ## ruff, mypy strict, terraform fmt/validate, checkov, shellcheck of the boot scripts, README tables
	$(BIN)/ruff check glue dev tests bench dags $(BOOT_PY)
	$(BIN)/ruff format --check glue dev tests bench dags $(BOOT_PY)
	$(BIN)/mypy
	$(BIN)/mypy $(BOOT_PY)
	terraform fmt -check -recursive -diff modules envs
	@set -e; for d in $(TF_DIRS); do \
	  case "$$d" in *gcp/*) if [ -z "$(GOOGLE_PROVIDER)" ]; then \
	    echo "terraform validate $$d: skipped, hashicorp/google provider not installed (only hashicorp/aws is in /opt/tf-plugins; tests/terraform/gcp checks these sources statically)"; \
	    continue; fi;; esac; \
	  echo "terraform validate $$d"; \
	  terraform -chdir=$$d init -backend=false -input=false >/dev/null; \
	  terraform -chdir=$$d validate -no-color; \
	done
	$(CHECKOV) -d modules
	$(CHECKOV) -d envs
	$(BIN)/pytest -q -m "not integration and not e2e" tests/terraform/test_boot_scripts.py tests/terraform/test_readme_tables.py

fmt: $(STAMP) ## rewrite Python and Terraform files in place
	$(BIN)/ruff format glue dev tests bench dags $(BOOT_PY)
	$(BIN)/ruff check --fix glue dev tests bench dags $(BOOT_PY)
	terraform fmt -recursive modules envs

plan: ## terraform plan of envs/$(ENV) (ENV=aws|gcp|local)
	terraform -chdir=envs/$(ENV) init -input=false
	terraform -chdir=envs/$(ENV) plan -input=false

up: $(STAMP) ## bring Air-Tasks up locally (MODE=local|swarm|cluster, AIRFLOW_PORT=8080, DAGS=folder)
	$(BIN)/python -m airtasks_dev up --mode $(MODE) --airflow-port $(AIRFLOW_PORT) $(if $(DAGS),--dags '$(DAGS)')

down: ## stop everything `make up` started and destroy what it applied
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m airtasks_dev down; else echo "nothing to stop (no .venv)"; fi

bench: $(STAMP) ## simulator table, one scaling pass and reaction time on real services, the scaler at scale
	$(BIN)/python -m bench

clean: down ## remove the venv and Terraform working files
	rm -rf $(VENV) .run
	find modules envs -name .terraform -type d -prune -exec rm -rf {} +
