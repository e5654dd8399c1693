"""Run a strategy config (``trainer=fsdp``, ``trainer=deepspeed``, ...) through real optimizer steps
and print what matters for it: steps taken, the last training loss, whether the weights stayed
finite, and the elements in each AdamW group (the weight-decay split must survive sharding).

    python benchmarks/strategy_check.py trainer=fsdp trainer.devices=1 [more overrides]

GPU strategies need a GPU (``benchmarks/gpu_step_time.sh`` runs this); ``trainer=cpu`` checks
the script itself anywhere.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from lightning_ltd.cli import build, run

CONF = Path(__file__).resolve().parents[1] / "conf"
SHORT = [
    "trainer.max_steps=20",
    "trainer.val_check_interval=10",
    "trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "lr.warmup_steps=2",
    "ltd.ramp_steps=10",
    "callbacks.model_checkpoint.every_n_train_steps=10",
    "trainer.gradient_clip_val=1.0",
]
"""Short, with the defaults that matter kept: pre-fit validation and clipping (through the
wrapped root under FSDP). ``ckpt_path=DIR/checkpoints/last.ckpt trainer.max_steps=30``
resumes a first run from its last checkpoint (step 20: a file, or the strategy's folder)."""


def main(overrides: list[str]) -> None:
    output = Path(tempfile.mkdtemp(prefix="strategy_check_"))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*SHORT, f"paths.output_dir={output}", *overrides])
    module, datamodule, trainer = build(cfg)
    run(cfg, module, datamodule, trainer)
    if trainer.global_rank != 0:
        return
    groups = trainer.optimizers[0].param_groups
    finite = all(torch.isfinite(p).all() for p in module.parameters())
    loss = trainer.callback_metrics.get("train/loss")
    print(f"strategy            {type(trainer.strategy).__name__} on {trainer.strategy.root_device}")
    print(f"optimizer steps     {trainer.global_step}")
    print(f"last train/loss     {float(loss):.4f}" if loss is not None else "last train/loss     (not logged)")
    print(f"weights finite      {finite}")
    for group in groups:  # elements on this rank: sharded strategies hold a slice
        print(f"AdamW group wd={group['weight_decay']:<5} {sum(p.numel() for p in group['params']):,} elements")
    print(f"resumed from        {cfg.get('ckpt_path')}")
    print(f"checkpoints         {sorted(p.name for p in (Path(cfg.paths.output_dir) / 'checkpoints').glob('*'))}")


if __name__ == "__main__":
    main(sys.argv[1:])
