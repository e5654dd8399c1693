"""``TrainingProgress``: whether a fit took any optimizer step at all."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.callbacks import Callback


class TrainingProgress(Callback):
    """The steps this fit took. Settings and data that end a fit before its first step (an empty
    training loader, an epoch limit of none, a budget already spent) pass through Lightning with
    a warning at most and exit 0: ``train.py`` turns a fit of no step into its one-line error,
    whatever the cause, instead of reporting a run that trained nothing as a success."""

    def __init__(self) -> None:
        self.start_step: int | None = None  # None: the training loop never started

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.start_step = trainer.global_step

    def steps(self, trainer: L.Trainer) -> int:
        return 0 if self.start_step is None else trainer.global_step - self.start_step
