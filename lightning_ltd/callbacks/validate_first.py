"""``ValidateFirst``: the pre-training validation, run inside ``fit`` so the model is wrapped once."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback


class ValidateFirst(Callback):
    """Runs the fit's own validation loop once before the first training batch: the starting
    point of the run summary, logged at step 0.

    A separate ``trainer.validate`` before ``trainer.fit`` sets the strategy up twice. Under FSDP
    the first setup leaves the blocks wrapped, so the second skips the root wrap (no
    ``clip_grad_norm_`` on the root, and ``configure_model`` then sees 1-D shard views). Inside
    ``fit`` the model is the one Lightning already wrapped for training, whatever the strategy.
    """

    def __init__(self) -> None:
        self.ran = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.ran or trainer.limit_val_batches == 0:
            return
        self.ran = True
        loop = trainer.fit_loop.epoch_loop
        trainer.validating = True  # what the epoch loop does around its own validation runs
        loop.val_loop.run()  # before the first training batch, so no training-step logging state to keep
        trainer.training = True
