"""Host synchronisations per training step with the full Trainer and the default callbacks.

Runs ``train.py``'s configuration on a GPU (``trainer=gpu`` plus the overrides given) with
``torch.cuda.set_sync_debug_mode("warn")`` switched on for every micro-batch that is not a
logging step (logging steps sync on purpose: the ledger's all-reduce, the throughput clock, the
guard's check) and prints each distinct Python call site that synchronised, with its count.
"0 synchronising call sites" is the pass.

    python benchmarks/trainer_sync_check.py [overrides...]
"""

from __future__ import annotations

import collections
import sys
import tempfile
import traceback
import warnings
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from lightning.pytorch.callbacks import Callback

from lightning_ltd.callbacks.ledger import is_logging_step
from lightning_ltd.cli import build, run

CONF = Path(__file__).resolve().parents[1] / "conf"
SETTINGS = [
    "trainer=gpu",
    "trainer.devices=1",
    "trainer.max_steps=40",
    "trainer.log_every_n_steps=10",
    "trainer.val_check_interval=1000",
    "trainer.limit_val_batches=2",
    "trainer.enable_progress_bar=false",
    "lr.warmup_steps=5",
    "ltd.ramp_steps=30",
    "callbacks.model_checkpoint.every_n_train_steps=1000",
]
WARMUP_STEPS = 5  # allocator warm-up, the first graphs: not the steady state


class SyncDebugWindow(Callback):
    """Sync debug mode on from this batch's start to its end, except on logging steps."""

    def __init__(self) -> None:
        self.sites: collections.Counter[str] = collections.Counter()
        self.checked_batches = 0

    def on_train_batch_start(self, trainer: Any, pl_module: Any, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        if step >= WARMUP_STEPS and not is_logging_step(trainer, step + 1):
            self.checked_batches += 1
            torch.cuda.set_sync_debug_mode("warn")

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        torch.cuda.set_sync_debug_mode("default")

    def record(self, message: Warning | str, *args: Any, **kwargs: Any) -> None:
        if "synchroniz" in str(message).lower():
            frames = [f for f in traceback.extract_stack()[:-2] if "warnings" not in f.filename]
            site = next((f for f in reversed(frames) if "site-packages/torch/" not in f.filename), frames[-1])
            self.sites[f"{site.filename}:{site.lineno} ({site.name})"] += 1


def main(overrides: list[str]) -> None:
    output = Path(tempfile.mkdtemp(prefix="sync_check_"))
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[*SETTINGS, f"paths.output_dir={output}", *overrides])
    module, datamodule, trainer = build(cfg)
    window = SyncDebugWindow()
    trainer.callbacks.append(window)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = window.record  # type: ignore[assignment]
        run(cfg, module, datamodule, trainer)
    print(f"{torch.cuda.get_device_name()}: {window.checked_batches} micro-batches checked with the full Trainer")
    print(f"{len(window.sites)} synchronising call sites")
    for site, count in window.sites.most_common():
        print(f"  {count:5d}  {site}")


if __name__ == "__main__":
    main(sys.argv[1:])
