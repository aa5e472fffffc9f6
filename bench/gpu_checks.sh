#!/usr/bin/env bash
# The GPU checks of the issues as one prepared pass, each step with its own time limit.
#
# From the repository root of a machine with a CUDA GPU and torch (torchvision and timm for
# model_speed and interop; Ray is not needed):
#   mkdir -p data && cp /path/to/cifar10_small.npz data/
#   OUT=gpu_out bash bench/gpu_checks.sh                 # the proxy checks (~6 minutes on an H200)
#   OUT=gpu_out bash bench/gpu_checks.sh model_speed interop latency_cuda train_speed
#   OUT=gpu_out bash bench/gpu_checks.sh fidelity        # the supernet (issue 14), ~5 minutes
#   OUT=gpu_out bash bench/gpu_checks.sh macro_fidelity  # the supernet vs NAS-Bench-Macro (issue 21), <= 5 minutes
#   MACRO_SMOKE=1 OUT=/tmp/g bash bench/gpu_checks.sh macro_fidelity   # the same step, tiny, on a CPU
# Each step writes its log under $OUT as it goes, so a step that runs long costs only itself.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$PWD/.device_py${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PY:-python3}
DATA=${DATA:-data/cifar10_small.npz}
step() { local name=$1 limit=$2; shift 2; echo "=== $name (limit ${limit}s)"; local t=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "rc=$? wall=$((SECONDS - t))s" >> "$OUT/$name.log"
  tail -n 25 "$OUT/$name.log"; }

recipe() {  # Issue 3: b0 held-out accuracy against seconds of training, cifar10_small (8k train, 2k held out).
  step recipe 150 $PY bench/proxy_recipe.py --data "$DATA" --variant default= \
    --variant channels-last=proxy.channels_last=on \
    --variant e8=proxy.epochs=8,proxy.warmup_epochs=2 \
    --variant autotune=proxy.cudnn_benchmark=true,proxy.eval_batch_size=256
}
throughput() {  # Issue 3: 1/2/4 packed 5-epoch b0 trials in the layout of packed search trials; fresh vs warm.
  step throughput 150 $PY bench/proxy_throughput.py --sections packing,fresh --data "$DATA" \
    --set proxy.channels_last=on
}
efficiency() {  # Issue 3: fraction of a 5-epoch trial spent in training steps.
  step efficiency 45 $PY bench/proxy_throughput.py --sections efficiency --data "$DATA"
}
quality() {  # Issue 3: Spearman rho of 4-epoch proxy vs 16-epoch training, 12 genotypes, 4 packed processes.
  step quality 210 $PY bench/proxy_quality.py --genotypes 12 --workers 4 --data "$DATA" --set proxy.epochs=4 \
    --set proxy.warmup_epochs=1
}
fidelity() {  # Issue 14: supernet vs standalone ranking (Kendall tau, Spearman rho, MACs peer), 24 genotypes,
  # 4 standalone processes packed on the GPU beside the supernet's training; then the speed ratios.
  step fidelity 300 $PY bench/supernet_fidelity.py --config experiments/supernet_gpu.yaml --data "$DATA" \
    --workers 4 --set proxy.channels_last=on --set output.dir="$OUT/runs" --json "$OUT/fidelity.json"
  step supernet_speed 60 $PY bench/supernet_speed.py --config experiments/supernet_gpu.yaml --data "$DATA"
}
macro_fidelity() {  # Issue 21: the NAS-Bench-Macro supernet at full width on cifar10_small, every one of the 3,969
  # networks scored and ranked against the table's converged accuracy and MnasNet reward (tau, rho, p@5%, params/MACs
  # peers, the table's seed-vs-seed ceiling).  MACRO_SMOKE=1: a tiny CPU setting (built-in data, 1 epoch, 40 networks)
  # that checks the step runs where there is no GPU.
  # One supernet (ensemble=1): the CPU default's ensemble of 2 would double the step past its 5 minutes.
  local size=(--data "$DATA" --set supernet.ensemble=1 --set proxy.width=1.0 --set proxy.device=auto --set proxy.channels_last=on
              --set supernet.epochs=30 --set supernet.batch_size=256 --set supernet.lr=0.2
              --set supernet.calib_batches=2 --set supernet.calib_batch_size=256)
  [ "${MACRO_SMOKE:-0}" = 1 ] && size=(--table-sample 40 --set supernet.epochs=1 --set supernet.ensemble=1)
  step macro_fidelity 300 $PY bench/supernet_fidelity.py --truth nas-bench-macro --config experiments/supernet_macro_16px.yaml \
    "${size[@]}" --set output.dir="$OUT/runs" --set output.name=macro_fidelity --json "$OUT/macro_fidelity.json"
}
model_speed() {  # Issue 2: our B0 train/inference throughput against torchvision and timm, eager and compiled.
  step model_speed 120 $PY bench/model_speed.py --gpu-only --gpu-steps 15 --gpu-warmup 4
}
interop() {  # Issue 2: torchvision state dicts into our models give the same logits.
  step interop 30 $PY -m pytest -q -p no:cacheprovider tests/test_interop.py -k torchvision
}
train_speed() {  # Issue 16: nas train's step (TF RMSProp, EMA, RandAugment pipeline) -- our B0 vs torchvision's,
  # 224x224, bf16, channels_last, batch 128; the torchvision layout of trained weights (skips without torchvision).
  step train_speed 150 bash -c "$PY bench/train_speed.py --sections gpu && \
    $PY -m pytest -q -p no:cacheprovider -m training tests/test_train.py -k torchvision_layout"
}
latency_cuda() {  # Issue 7: the CUDA latency path (events, warm-up, median), fp32 and bf16.
  step latency_cuda 40 bash -c "$PY -m nas.cli profile --measure b0 --target cuda --batch 1 && \
    $PY -m nas.cli profile --measure b0 --target cuda --batch 64 --dtype bf16"
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null | tee "$OUT/gpu.txt"
for s in "${@:-recipe throughput quality}"; do for t in $s; do "$t"; done; done
