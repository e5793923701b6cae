#!/usr/bin/env bash
# Runs the benchmarks on the lent GPU machine (torch there is preinstalled; the wheels of the
# packages it lacks travel in .whl/). Usage there: bash benchmarks/run_gpu.sh [data train eval infer large search compile pretrain bot profile]
# (wheels: bash benchmarks/gpu_wheels.sh here first; see docs/benchmarks.md, "GPU runs")
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD/src:${PYTHONPATH:-}"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
python3 -m reidkit.utils.offline_weights --install
OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
DATA=/tmp/market_synth
if [ ! -d "$DATA" ]; then
  python3 -c "from reidkit.data.synthetic import generate_synthetic as g; print(g('$DATA', num_ids=751, train_images=12936, seed=0))"
fi
run() { local name=$1 limit=$2; shift 2; echo "=== $name ==="; timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.txt"; }
for n in ${*:-data train eval infer}; do
  case $n in
    data)   run bench_data 150 python3 benchmarks/bench_data.py --device cuda --data "$DATA" ;;
    train)  run bench_train 240 python3 benchmarks/bench_train.py --device cuda --data "$DATA" --cache device --amp off,bf16,fp16 ;;
    eval)   run bench_eval 120 python3 benchmarks/bench_eval.py --device cuda --quick-ref --rerank ;;
    infer)  run bench_infer 150 python3 benchmarks/bench_infer.py --device cuda --skip-search ;;
    large)  run bench_eval_large 300 python3 benchmarks/bench_eval.py --device cuda --large --large-dim 128 ;;
    search) run bench_search 250 python3 benchmarks/bench_infer.py --device cpu --skip-infer ;;
    compile) run bench_train_compile 420 python3 benchmarks/bench_train.py --device cuda --data "$DATA" --cache device --amp bf16,fp16 --compile --warmup 10 ;;
    # issue 16: BoT-R50 bf16 eager vs compiled (CUDA graphs), ceiling, recompilations, syncs,
    # the 120-epoch time, eager-vs-compiled accuracy; then torch.profiler top kernels + GPU idle.
    bot)     run bench_train_bot 330 python3 benchmarks/bench_train.py --device cuda --data "$DATA" --cache device --variants bf16,bf16+reduce-overhead --warmup 15 --iters 30 --repeats 3 --extrapolate 120 --eval --accuracy-epochs 3 ;;
    profile) run profile_gpu_eager 90 python3 benchmarks/profile_train.py --device cuda --data "$DATA" --backbone resnet50 --last-stride 1 --neck bnneck --height 256 --width 128 --batch 64 --cache device --amp bf16 --steps 20 --warmup 10
             run profile_gpu_compiled 150 python3 benchmarks/profile_train.py --device cuda --data "$DATA" --backbone resnet50 --last-stride 1 --neck bnneck --height 256 --width 128 --batch 64 --cache device --amp bf16 --compile-mode reduce-overhead --steps 20 --warmup 15 ;;
    pretrain) run pretrain_effect 400 python3 benchmarks/pretrain_effect.py --device cuda --epochs 20 --ids 100 ;;
  esac
done
