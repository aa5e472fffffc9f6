#!/usr/bin/env bash
# The GPU checks of the issues in one prepared pass (~6 minutes on an H100/H200).
#
# How to run, from the repository root of a machine with a CUDA GPU, torch, torchvision
# and timm (the device tool's machines have them; Ray is not needed):
#   mkdir -p data && cp /path/to/cifar10_small.npz data/
#   OUT=gpu_out bash bench/gpu_checks.sh
# Each step has its own time limit and writes its log under $OUT as it goes, so a step
# that runs long costs only itself.
set -u
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD:$PWD/.device_py${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-gpu_out}
mkdir -p "$OUT"
PY=${PY:-python3}
DATA=${DATA:-data/cifar10_small.npz}
step() { local name=$1 limit=$2; shift 2; echo "=== $name (limit ${limit}s)"; local t=$SECONDS
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1; echo "rc=$? wall=$((SECONDS - t))s" >> "$OUT/$name.log"
  tail -n 25 "$OUT/$name.log"; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/gpu.txt"
# Issue 3: the default GPU proxy recipe on b0, cifar10_small (8k train, 2k held out of TRAIN).
step proxy_b0 45 $PY -m nas.cli train-proxy b0 --set data.kind=npz --set "data.path=$DATA" --set data.holdout=2000
# Issue 2: our B0 train/inference throughput against torchvision and timm (bf16, channels_last).
step model_speed 75 $PY bench/model_speed.py --gpu-only --gpu-steps 15 --gpu-warmup 4
# Issue 3: fraction of a trial in training steps, 1/2/4 packed trials, fresh vs warm process.
step proxy_throughput 100 $PY bench/proxy_throughput.py --sections efficiency,packing,fresh --data "$DATA"
# Issue 2: torchvision state dicts into our models give the same logits.
step interop_torchvision 30 $PY -m pytest -q -p no:cacheprovider tests/test_interop.py -k torchvision
# Issue 7: the CUDA latency path (events, warm-up, median), fp32 and bf16.
step latency_cuda 40 bash -c "$PY -m nas.cli profile --measure b0 --target cuda --batch 1 && \
  $PY -m nas.cli profile --measure b0 --target cuda --batch 64 --dtype bf16"
# Issue 3: Spearman rank correlation of the proxy against a 4x longer recipe, 12 genotypes.
step proxy_quality 110 $PY bench/proxy_quality.py --genotypes 12 --data "$DATA" --set proxy.epochs=4
