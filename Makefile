# The two commands of the README. Both set up .venv in the repository (created when
# missing, reused when present), install torch's CPU build first, then the project.
VENV := .venv
PY := $(VENV)/bin/python
OUT ?= quanta-out

.PHONY: demo test setup clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[test]'  # [test] holds every extra (quanta[all])
	touch $@

demo: setup
	$(VENV)/bin/quanta demo --out $(OUT)

test: setup
	$(PY) -m pytest -q

clean:
	rm -rf $(OUT) .pytest_cache
