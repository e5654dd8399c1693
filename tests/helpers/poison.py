"""A callback that makes the loss non-finite from a given step on (a diverging run, on demand)."""

import torch
from lightning.pytorch.callbacks import Callback


class PoisonAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))
