#!/usr/bin/env bash
# Download, on this machine, the wheels that benchmarks/run_gpu.sh installs on the lent GPU
# machine (Python 3.12, x86-64; it has torch, torchvision, onnx, onnxruntime but not pydantic or
# lmdb). They land in .whl/ (git-ignored); name .whl in the device call's `carry`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl
$PY -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d .whl pydantic==2.14.3 pydantic-core==2.50.4 annotated-types==0.8.0 typing-inspection==0.4.5 \
  typing-extensions==4.16.0 lmdb==3.0.0
ls .whl
