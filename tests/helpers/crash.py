"""A callback that kills its process without any clean-up, as a node failure or ``kill -9`` would."""

import os

from lightning.pytorch.callbacks import Callback


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            os._exit(9)  # no checkpoint, no teardown: whatever was written before is all there is
