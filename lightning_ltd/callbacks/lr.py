"""``ScheduledLR``: a schedule of ``lightning_ltd.ltd.lr`` as a torch LR scheduler in Lightning's hands."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import LRSchedulerConfig

from lightning_ltd.callbacks.ledger import is_logging_step
from lightning_ltd.callbacks.routing import RoutingDriver
from lightning_ltd.ltd.lr import LayerTokenLRScheduler, LRSchedule


class ScheduledLR(Callback):
    """Gives every optimizer a ``LayerTokenLRScheduler`` for ``schedule`` at fit start, in
    Lightning's list of step-interval schedulers, so Lightning steps it after each optimizer step,
    ``LearningRateMonitor`` logs it and checkpoints save it. The first training batch fixes the
    run's shape (the driver's counter): the schedulers start there, at the trainer's step.

    Logs ``train/lr`` (the first optimizer's first group) on logging steps, as the step uses it."""

    def __init__(self, schedule: LRSchedule, driver: RoutingDriver) -> None:
        self.schedule = schedule
        self.driver = driver
        self.schedulers: list[LayerTokenLRScheduler] = []

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Before Lightning restores a checkpoint's optimizer and scheduler states."""
        self.schedulers = [LayerTokenLRScheduler(optimizer, self.schedule) for optimizer in trainer.optimizers]
        configs = [LRSchedulerConfig(scheduler, interval="step") for scheduler in self.schedulers]
        trainer.strategy.lr_scheduler_configs = [*trainer.strategy.lr_scheduler_configs, *configs]

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        counter = self.driver.scheduled
        assert counter is not None, "the RoutingDriver runs first"
        for scheduler in self.schedulers:
            if scheduler.counter is not counter:  # once per fit: the counter is built once
                scheduler.start(counter, trainer.global_step)
        if self.schedulers and is_logging_step(trainer, trainer.global_step + 1):
            pl_module.log("train/lr", float(self.schedulers[0].get_last_lr()[0]), on_step=True, on_epoch=False)
