"""A callback for multi-process tests: each rank writes what it saw, step by step, to JSON."""

import json
import os
from pathlib import Path

from lightning.pytorch.callbacks import Callback

from lightning_ltd.callbacks import RandomLTDScheduler


class RankProbe(Callback):
    """Records each step's plan, data, LR, loss and (synced, so every rank calls it) ledger."""

    def __init__(self, out_dir: str, record_batches: bool = False) -> None:
        self.out_dir = Path(out_dir)
        self.record_batches = record_batches
        self.rows: list[dict] = []
        self.val_rows = 0
        self._plans: list = []

    def setup(self, trainer, pl_module, stage):
        router = pl_module.routers()[0]
        if getattr(router, "_probed", False):
            return
        layer_plan = router.layer_plan  # what our models' plan() and apply_random_ltd's layers both draw

        def recording(*args, **kwargs):
            drawn = layer_plan(*args, **kwargs)
            if pl_module.training and drawn is not None:
                self._plans.append(drawn.tolist())
            return drawn

        router.layer_plan, router._probed = recording, True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        scheduler = next(c for c in trainer.callbacks if isinstance(c, RandomLTDScheduler))
        scheduler.sync(trainer)
        self.rows.append(
            {
                "step": trainer.global_step,
                "keep": scheduler.keep_at(scheduler.driver.micro_batch.step),
                "lr": trainer.optimizers[0].param_groups[0]["lr"],  # the next step's, on every rank
                "layer_tokens": scheduler.ledger.consumed,
                "loss": float(outputs["loss"]),
                "indices": self._plans[-1],
                "batch_first_tokens": batch[:, 0].tolist(),
                **({"batch": batch.tolist()} if self.record_batches else {}),
            }
        )

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self.val_rows += pl_module.token_shape(batch)[0]

    def on_fit_end(self, trainer, pl_module):
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(self.rows))
        (self.out_dir / f"rank{trainer.global_rank}.val.json").write_text(json.dumps({"rows": self.val_rows}))

    def on_exception(self, trainer, pl_module, exception):
        """What stopped this rank, and its process id (a test checks it is gone)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        error = {"pid": os.getpid(), "type": type(exception).__name__, "message": str(exception)}
        (self.out_dir / f"rank{trainer.global_rank}.error.json").write_text(json.dumps(error))
