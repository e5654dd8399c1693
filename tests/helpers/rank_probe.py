"""A callback for multi-process tests: each rank writes what it saw, step by step, to JSON."""

import json
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from lightning_ltd.callbacks import RandomLTDScheduler


class RankProbe(Callback):
    def __init__(self, out_dir: str) -> None:
        self.out_dir = Path(out_dir)
        self.rows: list[dict] = []

    def setup(self, trainer, pl_module, stage):
        sampler = pl_module.samplers()[0]
        if getattr(sampler, "_probed", False):
            return
        sample = sampler.sample

        def recording(*args, **kwargs):
            indices = sample(*args, **kwargs)
            if pl_module.training:
                self._indices.append(indices.tolist())
            return indices

        sampler.sample, sampler._probed, self._indices = recording, True, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        scheduler = next(c for c in trainer.callbacks if isinstance(c, RandomLTDScheduler))
        self.rows.append(
            {
                "step": trainer.global_step,
                "keep": scheduler.current_keep,
                "lr": scheduler.current_lr,
                "layer_tokens": scheduler.layer_tokens,
                "loss": float(outputs["loss"]),
                "indices": self._indices[-len(pl_module.ltd_layers()) :],
                "batch_first_tokens": batch[:, 0].tolist(),
            }
        )

    def on_fit_end(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.rows))
