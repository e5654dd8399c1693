"""``LayerTokenLogger``: the layer-token ledger of a run, its logging and its checkpoint state."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_ltd.callbacks.routing import RoutingDriver
from lightning_ltd.ltd import effective_tokens, full_layer_tokens, layer_tokens_per_step
from lightning_ltd.ltd.ledger import LayerTokenLedger
from lightning_ltd.ltd.schedule import kept_tokens
from lightning_ltd.modules.base import RandomLTDModule


def is_logging_step(trainer: L.Trainer, step: int) -> bool:
    """Whether Lightning writes the step metrics of a batch of optimizer step ``step`` (counted
    from 1): every ``log_every_n_steps``-th step, and the batch that stops training."""
    every = trainer.log_every_n_steps
    return every > 0 and (step % every == 0 or trainer.should_stop)


class LayerTokenLogger(Callback):
    """Counts every micro-batch's layer-tokens (host integers: no device sync, no collective) and,
    on logging steps, sums them over ranks and logs ``train/keep`` (also in the progress bar: the
    heart of the method, as it ramps up), ``train/layer_tokens``,
    ``train/effective_tokens`` (layer-tokens / layers, Megatron's count), ``train/schedule_saving``
    (layer-tokens skipped so far against the same batches at full length). Checkpoints carry the
    synced totals."""

    def __init__(self, driver: RoutingDriver) -> None:
        self.driver = driver
        self.ledger = LayerTokenLedger()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: RandomLTDModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        batch_in_flight = self.driver.micro_batch
        assert batch_in_flight is not None
        _, _, rows, seq_len, keep = batch_in_flight
        n_layer, n_dropping = pl_module.num_layers, self.driver.scheduled.shape.n_dropping  # type: ignore[union-attr]
        self.ledger.add(
            layer_tokens_per_step(rows, seq_len, keep, n_layer, n_dropping), full_layer_tokens(rows, seq_len, n_layer)
        )
        if not is_logging_step(trainer, batch_in_flight.step + 1):
            return
        self.sync(trainer)
        pl_module.log("train/keep", float(kept_tokens(keep, seq_len)), on_step=True, on_epoch=False, prog_bar=True)
        metrics = {
            "train/layer_tokens": float(self.ledger.consumed),
            "train/effective_tokens": effective_tokens(self.ledger.consumed, n_layer),
            "train/schedule_saving": self.ledger.saving,
        }
        pl_module.log_dict(metrics, on_step=True, on_epoch=False)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.sync(trainer)  # final totals for the run summary

    def sync(self, trainer: L.Trainer) -> None:
        """Sum every rank's pending counts into the ledger (a collective: every rank calls it)."""
        if trainer.world_size == 1:
            self.ledger.sync()
            return

        def reduce(values: list[int]) -> list[int]:
            local = torch.tensor(values, dtype=torch.int64, device=trainer.strategy.root_device)
            return trainer.strategy.reduce(local, reduce_op="sum").tolist()

        self.ledger.sync(reduce)
