#!/usr/bin/env bash
# The GPU check for a lent GPU machine (issue 10), about 6 minutes on one H100/H200:
#  1. GPT-2 small shape with the real GPT-2 vocabulary (L12 C768 H12, T1024, V50304, B16), bf16
#     autocast, keep 512: eager, whole-model torch.compile and CUDA graphs (reduce-overhead),
#     full length vs random-LTD, plus steady-state steps under cuda sync debug mode "error".
#  2. GPT-3 1.3B shape (L24 C2048 H16, T2048, V50304, B8), eager bf16: step time and peak memory
#     at 10 kept lengths of the paper's schedule (128 -> 2048, granularity 16), integrated over
#     the whole run (ramp 200,000 of 286,102 steps) into the realization.
#  3. trainer=fsdp and trainer=deepspeed through 20 real optimizer steps with gradient clipping
#     (benchmarks/strategy_check.py): steps, loss, finite weights, the weight-decay groups.
# Parts 1-2 need only torch (the package is imported from the checkout). Part 3 needs hydra-core,
# omegaconf and antlr4-python3-runtime: carry their wheels in .whl (see the device README) and
# install them to /tmp/site first; it is skipped, saying so, without them (DeepSpeed likewise).
# Usage, from the repository root:  bash benchmarks/gpu_step_time.sh 2>&1 | tee gpu.log
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
date -u
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
echo "== GPT-2 small shape =="
timeout 240 python benchmarks/step_time.py --device cuda --bf16 --modes eager,compile,cudagraphs --sync-check \
    --n-layer 12 --n-embd 768 --n-head 12 --seq-len 1024 --vocab-size 50304 --keep 512 --batch-size 16 \
    --warmup 4 --steps 10 --repeats 2
echo "== GPT-3 1.3B shape, whole MSLG schedule =="
timeout 150 python benchmarks/step_time.py --device cuda --bf16 --modes eager \
    --n-layer 24 --n-embd 2048 --n-head 16 --seq-len 2048 --vocab-size 50304 --keep 1024 --batch-size 8 \
    --warmup 2 --steps 4 --repeats 1 --schedule 128:2048:16 --schedule-points 10 \
    --ramp-steps 200000 --total-steps 286102
echo "== strategies: real optimizer steps =="
if python -c "import hydra, omegaconf" 2>/dev/null; then
    TINY="model.n_layer=4 model.n_embd=256 model.n_head=4 data.block_size=256 data.batch_size=16 ltd.min_keep=64"
    echo "-- trainer=fsdp"
    timeout 120 python benchmarks/strategy_check.py trainer=fsdp trainer.devices=1 $TINY
    if python -c "import deepspeed" 2>/dev/null; then
        echo "-- trainer=deepspeed"
        timeout 120 python benchmarks/strategy_check.py trainer=deepspeed trainer.devices=1 $TINY
    else
        echo "-- trainer=deepspeed: skipped (deepspeed is not installed on this machine)"
    fi
else
    echo "skipped: hydra-core/omegaconf are not installed (carry their wheels, see the header)"
fi
