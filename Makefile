# mol_edu: the two commands of the README are `make demo` and `make test`.
BIN := .venv/bin
PYTHON ?= python3
export PYTHONHASHSEED := 0
export MPLBACKEND := Agg
export PATH := $(CURDIR)/.venv/bin:$(PATH)

.PHONY: install demo test test-slow docs readme sync check gpu-wheels gpu-check

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

gpu-wheels:  ## download the wheels the GPU machine lacks (tools/gpu_wheels.txt) into .whl/; needs a registry
	bash tools/gpu_wheels.sh

# On the GPU machine (no .venv there: python3 is the machine's own, with its CUDA PyTorch). GPU_CHECK_ARGS=--dry
# rehearses on the CPU. The report goes to $(OUT)/gpu_check.json (OUT from the environment, else runs/gpu-check).
OUT ?= runs/gpu-check
gpu-check:  ## the prepared GPU check: CUDA tests and cells, model speed, one LOSO fold, torchrun (see benchmarks/README.md)
	python3 tools/gpu_check.py --out $(OUT) $(GPU_CHECK_ARGS)
