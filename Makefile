# The two commands of the README. Both set up .venv in the repository (created when
# missing, reused when present), install torch's CPU build first, then the project.
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= quanta-out

.PHONY: demo test setup browser clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'  # [test] holds every extra (quanta[all])
	# Triton for the kernels' tests, in its interpreter (3.8: NumPy 2); not in [test], whose
	# pin would fight the exact one a CUDA build of torch brings with it
	$(PY) -c "import triton" 2>/dev/null || $(PY) -m pip install --quiet 'triton>=3.8'
	touch $@

demo: setup
	$(VENV)/bin/quanta demo --out $(OUT)

# Debian's chromium for the report's browser test (tests/test_report_browser.py): installed
# as root where missing (CI runs as root), a note otherwise (the test then skips, off CI).
CHROMIUM := /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "no $(CHROMIUM): the browser test will skip (as root: apt-get install chromium)"; \
	  fi; }

# One pytest worker per core (pytest-xdist; CI has 2), a test file per worker at a time.
test: setup browser
	$(PY) -m pytest -q -n auto --dist loadfile

clean:
	rm -rf $(OUT) .pytest_cache
