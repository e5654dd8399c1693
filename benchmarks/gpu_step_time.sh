#!/usr/bin/env bash
# The GPU check for a lent GPU machine (issue 6): GPT-2 small shape (12 layers, C=768, 12 heads),
# seq 1024, bf16 autocast, eager and compiled, with and without random-LTD at keep = 512.
# Usage on the GPU machine, from the repository root:  bash benchmarks/gpu_step_time.sh
set -euo pipefail
python -m pip install --quiet -e . 2>/dev/null || true
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
PYTHONUNBUFFERED=1 python benchmarks/step_time.py --device cuda --bf16 --compile \
    --n-layer 12 --n-embd 768 --n-head 12 --seq-len 1024 --keep 512 --batch-size 16 \
    --warmup 5 --steps 20 --repeats 3
