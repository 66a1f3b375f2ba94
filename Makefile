# The two commands a newcomer runs: `make demo` and `make test`. Every install step lives here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam
STAMP := $(VENV)/.installed
SAM_STAMP := $(SAM_VENV)/.installed
SHARED ?= ../shared
export SAM_CLI_TELEMETRY := 0
export SAM_SKIP_PULL_IMAGE := 1

.PHONY: help setup demo test unit integration lint sam-setup sam-prepare sam-check bench compliance-report clean

help:
	@echo "make demo       set up, then run the end-to-end path on the embedded local cloud"
	@echo "make test       set up, then run every test (unit + integration)"
	@echo "make sam-check  the same functions under the real SAM CLI in Docker, compared with localcloud"
	@echo "make bench      run the benchmarks and regenerate BENCHMARKS.md"
	@echo "make compliance-report MODEL=yield VERSION=2   one version's compliance report (localcloud start's stack)"

setup: $(STAMP)

$(STAMP): requirements/dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

demo: setup
	$(PY) -m demo

# Two workers (the CI machine has 2 cores); --dist loadfile keeps each module on one worker, since
# a module shares one LocalCloud through its module-scoped fixtures.
test: setup
	$(PY) -m pytest -n 2 --dist loadfile tests/unit tests/integration

unit: setup
	$(PY) -m pytest tests/unit

integration: setup
	$(PY) -m pytest tests/integration

lint: setup
	$(VENV)/bin/cfn-lint template.yaml

# ---- the real SAM CLI, in its own virtualenv (its pins differ from moto's) ----------------
sam-setup: $(SAM_STAMP)

$(SAM_STAMP): requirements/sam.txt
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -r requirements/sam.txt
	touch $@

# sam validate --lint, sam build, then every function with each of its events/ under
# `sam local invoke` (Docker) compared with `localcloud invoke` (tests/sam). Never skips: without
# Docker it fails and says why.
# sam-prepare: everything sam-check needs before its tests (Docker, the Lambda base image, the
# moto image); idempotent, and quick once done. .ci/run runs it while `make test` runs.
sam-prepare: setup sam-setup
	@bash $(SHARED)/tools/start-docker.sh || { \
	  echo "sam-check: FAILED: no Docker engine could be started here (reason above): SAM compatibility was NOT checked." >&2; \
	  exit 1; }
	PYTHON=$(abspath $(SAM_VENV))/bin/python bash $(SHARED)/tools/build-lambda-base.sh
	$(PY) -c 'import sys; sys.path.insert(0, "tests/sam"); import samkit; print("moto image:", samkit.ensure_moto_image())'

sam-check: sam-prepare
	PATH=$(abspath $(SAM_VENV))/bin:$$PATH $(PY) -m pytest tests/sam -v -p no:cacheprovider -n 2 --dist load

bench: setup
	$(PY) benchmarks/run.py

# One model version's compliance report (mlops.governance.compliance_report), by default from
# the stack `localcloud start` runs (stack mlops, moto on 127.0.0.1:4566).
MODEL ?= yield
VERSION ?= 1
STACK ?= mlops
ENDPOINT ?= http://127.0.0.1:4566
compliance-report: setup
	AWS_ENDPOINT_URL=$(ENDPOINT) AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
	REGISTRY_TABLE=$(STACK)-RegistryTable ARTIFACTS_BUCKET=$(STACK)-artifactsbucket AUDIT_TABLE=$(STACK)-AuditTable \
	AUDIT_ARCHIVE_BUCKET=$(STACK)-auditarchivebucket PYTHONPATH=layers/common/python \
	$(PY) -m mlops.governance.compliance_report --model $(MODEL) --version $(VERSION) \
	  --out reports/compliance/$(MODEL)-v$(VERSION).md

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam reports .pytest_cache
