"""``RunPlots``: every run leaves its curves in ``plots/`` (``series.json`` and PNG figures)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from lightning_ltd.callbacks.summary import find_scheduler
from lightning_ltd.errors import ConfigError, writing
from lightning_ltd.plots.draw import SERIES, draw_run


class RunPlots(Callback):
    """Records, on rank 0 and from values the host already has (no sync of its own), the kept
    length and LR of every optimizer step and the validation loss with the layer-tokens and wall
    time at each validation; at the end of the fit writes them to ``dirpath/series.json`` and
    draws ``val_loss.png`` (against layer-tokens and wall time), ``keep.png`` and ``lr.png``.
    Without matplotlib the figures are skipped with one note; the series is always written, and
    ``lightning-ltd-plot`` overlays runs from it. A resumed run's series starts at its resume.

    Args:
        dirpath: the folder (the run folder's ``plots/``).
    """

    def __init__(self, dirpath: str) -> None:
        self.dirpath = Path(dirpath)
        self.train: dict[str, list[float]] = {"step": [], "keep": [], "lr": []}
        self.val: dict[str, list[float]] = {"step": [], "loss": [], "layer_tokens": [], "wall_time_s": []}
        self._start = 0.0

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.monotonic()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        scheduler = find_scheduler(trainer)
        batch = scheduler.driver.micro_batch if scheduler is not None else None
        if not trainer.is_global_zero or batch is None or trainer.global_step == batch.step:
            return  # not the micro-batch that stepped
        self.train["step"].append(batch.step)
        self.train["keep"].append(float(batch.keep if batch.keep is not None else batch.seq_len))
        self.train["lr"].append(float(trainer.optimizers[0].param_groups[0]["lr"]))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        scheduler = find_scheduler(trainer)
        if trainer.sanity_checking or scheduler is None:
            return
        scheduler.sync(trainer)  # every rank is here: the layer-tokens as of this validation
        loss = trainer.callback_metrics.get("val/loss")
        if not trainer.is_global_zero or loss is None:
            return
        self.val["step"].append(trainer.global_step)
        self.val["loss"].append(float(loss))
        self.val["layer_tokens"].append(float(scheduler.ledger.consumed))
        self.val["wall_time_s"].append(time.monotonic() - self._start)

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.is_global_zero:
            return
        series = {"train": self.train, "val": self.val}
        self.dirpath.mkdir(parents=True, exist_ok=True)
        with writing(self.dirpath / SERIES):
            (self.dirpath / SERIES).write_text(json.dumps(series))
        try:
            draw_run(series, self.dirpath)
        except ConfigError as err:  # no matplotlib: the series stays for lightning-ltd-plot
            rank_zero_info(f"note: {err}; {self.dirpath / SERIES} holds the curves")
