"""``LayerTokenBudget``: stop training at the first optimizer step that reaches a layer-token budget."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_ltd.callbacks.routing import RoutingDriver
from lightning_ltd.ltd.lr import LRSchedule


class LayerTokenBudget(Callback):
    """Stops at the first optimizer step whose scheduled layer-tokens (the same on every rank, no
    communication) reach the schedule's ``budget`` (a total in tokens or steps becomes one in
    layer-tokens at the first batch); ``stop_step`` records where."""

    def __init__(self, schedule: LRSchedule, driver: RoutingDriver) -> None:
        self.schedule = schedule
        self.driver = driver
        self.stop_step: int | None = None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        scheduled, budget = self.driver.scheduled, self.schedule.budget
        if scheduled is None or budget is None or not self.driver.stepped(trainer):
            return
        if scheduled.before(trainer.global_step) >= budget:
            trainer.should_stop = True
            self.stop_step = trainer.global_step
