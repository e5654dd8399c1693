#!/usr/bin/env bash
# The GPU check for a lent GPU machine (issues 10 and 21), about 10 minutes on one H100/H200:
#  1. GPT-2 small shape with the real GPT-2 vocabulary (L12 C768 H12, T1024, V50304, B16), bf16
#     autocast, keep 512: eager, whole-model torch.compile and CUDA graphs (reduce-overhead),
#     full length vs random-LTD, plus steady-state steps under cuda sync debug mode "error".
#  2. GPT-3 1.3B shape (L24 C2048 H16, T2048, V50304, B8), eager bf16: step time and peak memory
#     at 10 kept lengths of the paper's schedule (128 -> 2048, granularity 16), integrated over
#     the whole run (ramp 200,000 of 286,102 steps) into the realization.
#  3. trainer=fsdp and trainer=deepspeed through 20 real optimizer steps with the default pre-fit
#     validation and gradient clipping (benchmarks/strategy_check.py): steps, loss, finite weights,
#     the weight-decay groups; then each resumes from its step-10 checkpoint (FSDP: a file, and a
#     sharded folder with state_dict_type=sharded; DeepSpeed: its folder) to step 30.
#  4. host syncs per micro-batch with the full Trainer and default callbacks
#     (benchmarks/trainer_sync_check.py, sync debug mode on every non-logging micro-batch).
#  5. compiled graphs at the GPT-3 1.3B shape: MSLG vs 16 buckets, and inductor compile seconds
#     per graph (benchmarks/compile_graphs.py, 3 graphs).
# Parts 1-2 need only torch (the package is imported from the checkout). Part 3 needs hydra-core,
# omegaconf and antlr4-python3-runtime: carry their wheels in .whl (see the device README) and
# install them to /tmp/site first; it is skipped, saying so, without them (DeepSpeed likewise).
# Usage, from the repository root:  bash benchmarks/gpu_step_time.sh 2>&1 | tee gpu.log
# PARTS=1,2 (or 3,4,5) runs only those parts: two calls that each fit a 10-minute device limit.
set -uo pipefail
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
date -u
wants() { [[ ",${PARTS:-1,2,3,4,5}," == *",$1,"* ]]; }
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if wants 1; then
echo "== GPT-2 small shape =="
timeout 240 python benchmarks/step_time.py --device cuda --bf16 --modes eager,compile,cudagraphs --sync-check \
    --n-layer 12 --n-embd 768 --n-head 12 --seq-len 1024 --vocab-size 50304 --keep 512 --batch-size 16 \
    --warmup 4 --steps 10 --repeats 2
fi
if wants 2; then
echo "== GPT-3 1.3B shape, whole MSLG schedule =="
timeout 150 python benchmarks/step_time.py --device cuda --bf16 --modes eager \
    --n-layer 24 --n-embd 2048 --n-head 16 --seq-len 2048 --vocab-size 50304 --keep 1024 --batch-size 8 \
    --warmup 2 --steps 4 --repeats 1 --schedule 128:2048:16 --schedule-points 10 \
    --ramp-steps 200000 --total-steps 286102
fi
if ! python -c "import hydra, omegaconf" 2>/dev/null; then
    echo "parts 3-4 skipped: hydra-core/omegaconf are not installed (carry their wheels, see the header)"
elif wants 3; then
echo "== strategies: real optimizer steps =="
    TINY="model.n_layer=4 model.n_embd=256 model.n_head=4 data.block_size=256 data.batch_size=16 ltd.min_keep=64"
    RUNS=$(mktemp -d)
    for variant in "fsdp full" "fsdp sharded"; do
        set -- $variant
        echo "-- trainer=fsdp, state_dict_type=$2, then resume"
        timeout 120 python benchmarks/strategy_check.py trainer=fsdp trainer.devices=1 trainer.strategy.state_dict_type=$2 \
            paths.output_dir=$RUNS/fsdp-$2 $TINY
        timeout 120 python benchmarks/strategy_check.py trainer=fsdp trainer.devices=1 trainer.strategy.state_dict_type=$2 \
            paths.output_dir=$RUNS/fsdp-$2-resumed ckpt_path=$RUNS/fsdp-$2/checkpoints/last.ckpt \
            trainer.max_steps=30 $TINY
    done
    if python -c "import deepspeed" 2>/dev/null; then
        echo "-- trainer=deepspeed, then resume"
        timeout 120 python benchmarks/strategy_check.py trainer=deepspeed trainer.devices=1 paths.output_dir=$RUNS/ds $TINY
        timeout 120 python benchmarks/strategy_check.py trainer=deepspeed trainer.devices=1 paths.output_dir=$RUNS/ds-resumed \
            ckpt_path=$RUNS/ds/checkpoints/last.ckpt trainer.max_steps=30 $TINY
    else
        echo "-- trainer=deepspeed: skipped (deepspeed is not installed on this machine)"
    fi
fi
if wants 4 && python -c "import hydra, omegaconf" 2>/dev/null; then
    echo "== host syncs with the full Trainer =="
    timeout 150 python benchmarks/trainer_sync_check.py model.n_layer=12 model.n_embd=768 model.n_head=12 \
        data.block_size=1024 data.batch_size=8 ltd.min_keep=128
fi
if wants 5; then
echo "== compiled graphs at the GPT-3 1.3B shape =="
timeout 240 python benchmarks/compile_graphs.py --device cuda --bf16 --n-layer 24 --n-embd 2048 --n-head 16 \
    --seq-len 2048 --vocab-size 50304 --batch-size 4 --schedule 128:2048:16 --ramp-steps 133333 --max-graphs 3
fi
