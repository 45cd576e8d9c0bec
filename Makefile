# The two commands the README opens with. Each creates .venv if missing; torch==2.13.0 (the CPU
# build) is installed before the package so nothing pulls CUDA wheels.
PY := .venv/bin/python
PIP := $(PY) -m pip

.PHONY: demo test test-fast setup lint docs

.venv/.base:
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	touch $@

.venv/.dev: .venv/.base pyproject.toml
	$(PIP) install -q -e ".[dev]"
	touch $@

setup: .venv/.dev

# Main job: draw landmarks + attributes on a bundled photo (matplotlib's public-domain
# portrait of Grace Hopper) with the shipped weights; writes demo/grace_hopper.jpg.
demo: .venv/.dev
	$(PY) scripts/draw_landmarks.py --overwrite "$$($(PY) -c 'import matplotlib.cbook as c; print(c.get_sample_data("grace_hopper.jpg", asfileobj=False))')" --out demo --json
	@echo "annotated image: demo/grace_hopper.jpg"

# The type checker, then the whole suite (`make test-fast`: the tier without data or subprocess
# training, under 30 s).
test: .venv/.dev
	$(PY) -m mypy
	$(PY) -m pytest -q

test-fast: .venv/.dev
	$(PY) -m pytest -q -m "not slow and not distributed and not data"

# The docs site: regenerate the generated pages and tables, then build site/ with warnings as errors.
.venv/.docs: .venv/.dev
	$(PIP) install -q -e ".[dev,docs]"
	touch $@

docs: .venv/.docs
	$(PY) scripts/gen_docs.py
	$(PY) -m mkdocs build --strict --quiet

lint: .venv/.dev
	$(PY) -m ruff check facemtl tests scripts references experiments
	$(PY) -m ruff format --check facemtl tests scripts references experiments
