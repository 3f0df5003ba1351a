# The README's two commands: `make demo` and `make test`. Both set everything up through `make install`.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
OLDEST := .venv-oldest
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1

.PHONY: install demo lint test test-slow fix-copies bench clean

install: $(VENV)/.installed $(OLDEST)/.installed tests/transformers_common/VERSION

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# The oldest transformers pyproject.toml allows (constraints-oldest.txt), for tests/test_compat.py: a venv that holds
# only the packages whose version differs and reads the rest from $(VENV) through a .pth file, after its own.
$(OLDEST)/.installed: $(VENV)/.installed constraints-oldest.txt
	rm -rf $(OLDEST)
	$(PYTHON) -m venv $(OLDEST)
	$(PYTHON) -c 'import sysconfig; print(sysconfig.get_path("purelib"))' \
		> "$$($(OLDEST)/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')/hfmodels-venv.pth"
	$(OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check -c constraints-oldest.txt transformers
	$(OLDEST)/bin/python -c 'import transformers; print("$(OLDEST): transformers", transformers.__version__)'
	touch $@

# transformers' common model tests (tests/test_transformers_common.py), from the source distribution of the pinned
# transformers: downloaded here, while PyPI is reachable; the tests run offline.
tests/transformers_common/VERSION: $(VENV)/.installed
	$(PYTHON) scripts/transformers_tests.py

demo: install
	$(VENV)/bin/hfmodels train
	$(VENV)/bin/hfmodels evaluate runs/image-classifier-digits

# ruff (configured in pyproject.toml): line length, import order, unused names. No `ruff format`: the layout is kept
# by hand.
lint: install
	$(VENV)/bin/ruff check .

# Lint first, so a finding fails `make test`. The browser tests drive Debian's Chromium (Playwright cannot download
# its own browser offline).
test: lint
	command -v chromium >/dev/null || apt-get install -y chromium
	$(PYTHON) -m pytest

# The heavier checks the default run leaves out (marked `slow`: full-length quality measurements, the ONNX export of
# every family, ...).
test-slow: lint
	$(PYTHON) -m pytest -m slow

# The model code several model folders share: one source in hfmodels/models/, a real copy in each folder that needs it
# (scripts/fix_copies.py); `make test` fails when a copy differs from its source.
fix-copies: install
	$(PYTHON) scripts/fix_copies.py

# Benchmarks as ratios against references run in the same process; writes docs/benchmarks.md and .json.
bench: install
	$(PYTHON) scripts/benchmark.py --quick

clean:
	rm -rf runs .pytest_cache
