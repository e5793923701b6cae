#!/usr/bin/env bash
# Runs every benchmark on the lent GPU machine (torch there is preinstalled; the wheels of the
# packages it lacks travel in .whl/). Usage on that machine: bash benchmarks/run_gpu.sh [names]
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
names=${*:-data eval infer train}
for n in $names; do
  echo "=== bench_$n ==="
  case $n in
    data)  python3 benchmarks/bench_data.py --device cuda 2>&1 | tee "$OUT/bench_data.txt" ;;
    eval)  python3 benchmarks/bench_eval.py --device cuda --large 2>&1 | tee "$OUT/bench_eval.txt" ;;
    infer) python3 benchmarks/bench_infer.py --device cuda 2>&1 | tee "$OUT/bench_infer.txt" ;;
    train) python3 benchmarks/bench_train.py --device cuda --amp off,bf16,fp16 2>&1 | tee "$OUT/bench_train.txt" ;;
  esac
done
