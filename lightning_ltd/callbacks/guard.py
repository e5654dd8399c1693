"""``NonFiniteLossGuard``: stop at the first non-finite training loss, before it reaches a checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the first such step."""


class NonFiniteLossGuard(Callback):
    """Record the first optimizer step whose training loss is not finite, and stop the run there.

    The record is kept on the device (``torch.where`` into a one-element tensor), so the guard
    adds no host synchronisation per micro-batch; the host reads it every ``check_every_n_steps``
    steps (default: the trainer's ``log_every_n_steps``) and, always, just before a checkpoint is
    written. A run that went non-finite therefore raises ``NonFiniteLossError`` naming the step
    and never writes a checkpoint from a non-finite state: the last good one stays untouched.

    Args:
        check_every_n_steps: how often the host looks at the record (None: ``log_every_n_steps``).
    """

    def __init__(self, check_every_n_steps: int | None = None) -> None:
        if check_every_n_steps is not None and (isinstance(check_every_n_steps, bool) or check_every_n_steps < 1):
            raise ValueError(f"check_every_n_steps={check_every_n_steps!r} must be a positive integer or None")
        self.check_every_n_steps = check_every_n_steps
        self._first_bad: torch.Tensor | None = None
        self._step = 0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step = trainer.global_step  # the step this batch belongs to (as metrics.csv numbers it)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not isinstance(loss, torch.Tensor):
            return
        loss = loss.detach()
        if self._first_bad is None or self._first_bad.device != loss.device:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad_now = ~torch.isfinite(loss) & (self._first_bad < 0)
        self._first_bad = torch.where(bad_now, self._step, self._first_bad)  # no host sync
        every = self.check_every_n_steps or max(1, trainer.log_every_n_steps)
        if trainer.global_step % every == 0:
            self.check()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.check()  # raising here aborts the save: nothing non-finite reaches a checkpoint

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check()

    def check(self) -> None:
        """Raise ``NonFiniteLossError`` if any recorded training loss was not finite."""
        if self._first_bad is None:
            return
        first_bad = int(self._first_bad)
        if first_bad >= 0:
            raise NonFiniteLossError(
                f"the training loss was not finite at optimizer step {first_bad}: stopped, no checkpoint written "
                "after it (lower model.lr, check the data, or resume from the last good checkpoint)"
            )
