# make course  — set up .venv if needed, run every notebook with papermill, print a table
# make test    — set up .venv if needed, run the test suite (unit tests + every notebook)
# make lab     — JupyterLab on the course kernel
# make clean-copies — output-free, answer-free notebooks for instructors in clean/
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE := $(CURDIR)/.cache
export HF_HOME ?= $(CACHE)/hf
export MPLCONFIGDIR ?= $(CACHE)/matplotlib
export IPYTHONDIR ?= $(CACHE)/ipython
export JUPYTER_CONFIG_DIR ?= $(CACHE)/jupyter/config
export JUPYTER_DATA_DIR ?= $(CACHE)/jupyter/data
export JUPYTER_RUNTIME_DIR ?= $(CACHE)/jupyter/runtime
export PIP_CACHE_DIR ?= $(CACHE)/pip
export UV_CACHE_DIR ?= $(CACHE)/uv
export UV_LINK_MODE ?= copy
export TOKENIZERS_PARALLELISM ?= false
STAMP := $(VENV)/.installed-$(shell cat requirements.txt pyproject.toml | md5sum | cut -c1-8)

.PHONY: install browser course test lab clean-copies
install: $(STAMP)

# pip takes torch (on the course machines its CPU build is a local wheel that only pip finds; elsewhere
# uv would pick the multi-GB CUDA build), then uv installs the rest: parallel downloads, several times
# faster than pip. The output goes to $(VENV)/install.log and is shown only when the install fails.
$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@echo "installing the pinned stack into $(VENV) (log: $(VENV)/install.log)"
	@{ $(PY) -m pip install --upgrade pip && $(PY) -m pip install "$$(grep -m1 '^torch==' requirements.txt)" uv==0.13.9 \
	  && $(VENV)/bin/uv pip install --python $(PY) --compile-bytecode -r requirements.txt \
	  && $(VENV)/bin/uv pip install --python $(PY) --no-deps -e .; } > $(VENV)/install.log 2>&1 \
	  || { tail -n 40 $(VENV)/install.log; echo "install failed: see $(VENV)/install.log"; exit 1; }
	@rm -f $(VENV)/.installed-*; touch $@

course: install
	@$(PY) tools/run_course.py

# Debian's chromium for the browser tests (never a downloaded browser build), and a CJK font so
# that their screenshots show the Chinese samples as characters (optional: boxes without it)
browser:
	@mkdir -p $(CACHE); command -v chromium >/dev/null || { if [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } > $(CACHE)/apt.log 2>&1 \
	  || { tail -n 20 $(CACHE)/apt.log; echo "installing chromium failed (log: $(CACHE)/apt.log)"; }; \
	else echo "chromium is missing: sudo apt-get install -y chromium (the browser tests fail until it is there)"; fi; }
	@dpkg-query -W -f='$${Status}' fonts-wqy-microhei 2>/dev/null | grep -q 'ok installed' || { [ "$$(id -u)" = 0 ] && { apt-get update -qq; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-microhei >/dev/null; } 2>/dev/null \
	  || echo "no CJK font (apt-get install -y fonts-wqy-microhei): screenshots show Chinese as boxes"; }

# two pytest workers (pytest-xdist): the notebook runs go first, so they take one worker and the other tests
# the other; --dist loadscope keeps a module on one worker (its module fixtures are built once), and the
# collection order is kept; waiting OpenMP threads sleep instead of spinning on the other worker's core
test: install browser
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder

# localhost only, behind a random token (set JUPYTER_TOKEN to choose one); the environment carries it to
# Jupyter, so it never shows in the process list, and it is printed here to log in with
lab: install
	@token="$${JUPYTER_TOKEN:-$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(24))')}"; \
	echo "JupyterLab on 127.0.0.1 only; log in with the token $$token"; \
	JUPYTER_TOKEN="$$token" $(VENV)/bin/jupyter lab notebooks --ServerApp.ip=127.0.0.1 --ServerApp.allow_remote_access=False

clean-copies: install
	$(PY) tools/clean_copies.py --out clean
