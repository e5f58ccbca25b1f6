# mol_edu: the two commands of the README are `make demo` and `make test`.
BIN := .venv/bin
PYTHON ?= python3
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: install demo test test-slow docs readme sync check

install:  ## create .venv and install the project (idempotent)
	@PYTHON=$(PYTHON) bash tools/install.sh

demo: install  ## the main job on the built-in synthetic dataset
	$(BIN)/mol-train --name demo

test: install  ## clean + export-sync checks, every notebook, tests/, docs build and browser check
	$(BIN)/python tools/docs.py site
	$(BIN)/python -m pytest

test-slow: install  ## as `test`, plus the #| slow / #| cuda cells and @pytest.mark.slow tests
	$(BIN)/python tools/docs.py site
	MOL_EDU_SLOW=1 $(BIN)/python -m pytest

docs: install  ## the offline docs site in _docs/ (with Quarto: nbdev_docs)
	$(BIN)/python tools/docs.py site

readme: install  ## README.md from nbs/index.ipynb
	$(BIN)/python tools/docs.py readme

sync: install  ## after editing notebooks: export the package, clean the notebooks, regenerate README.md
	$(BIN)/nbdev_export
	$(BIN)/nbdev_clean
	$(BIN)/python tools/docs.py readme

check: install  ## only the fast project checks (clean, export sync, README)
	$(BIN)/python -m pytest tests/test_project.py
