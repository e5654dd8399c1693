"""``NonFiniteLossGuard``: stop at the first non-finite training loss, before it reaches a checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch.nn.utils import get_total_norm

from lightning_ltd.schema import Count, PositiveInt, checked


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss; the message names the first such step."""


class NonFiniteLossGuard(Callback):
    """Record the first optimizer step whose training loss is not finite, and stop the run there.

    The record is kept on the device (``torch.where`` into a one-element tensor), so the guard
    adds no host synchronisation per micro-batch; the host reads it every ``check_every_n_steps``
    steps (default: the trainer's ``log_every_n_steps``) and, always, just before a checkpoint is
    written. A run that went non-finite therefore raises ``NonFiniteLossError`` naming the step
    and never writes a checkpoint from a non-finite state: the last good one stays untouched.

    With ``skip_steps`` > 0 the guard instead drops the update of a step whose gradients are not
    finite (every gradient is cleared, so the optimizer leaves weights and moments as they were)
    and stops only at the ``skip_steps + 1``-th such step. Deciding before the update costs one
    host synchronisation per optimizer step; ranks agree (any rank's bad gradients skip the step
    everywhere, so sharded strategies stay in step). The skipped steps are logged as
    ``train/skipped_steps``.

    Args:
        check_every_n_steps: how often the host looks at the record (None: ``log_every_n_steps``).
        skip_steps: how many non-finite optimizer steps to skip before stopping (0: stop at the first).
    """

    @checked
    def __init__(self, check_every_n_steps: PositiveInt | None = None, skip_steps: Count = 0) -> None:
        self.check_every_n_steps = check_every_n_steps
        self.skip_steps = skip_steps
        self.skipped: list[int] = []
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
        if self.skip_steps or not isinstance(loss, torch.Tensor):
            return  # when skipping, on_before_optimizer_step judges every step
        loss = loss.detach()
        if self._first_bad is None or self._first_bad.device != loss.device:
            self._first_bad = torch.full((), -1, dtype=torch.long, device=loss.device)
        bad_now = ~torch.isfinite(loss) & (self._first_bad < 0)
        self._first_bad = torch.where(bad_now, self._step, self._first_bad)  # no host sync
        every = self.check_every_n_steps or max(1, trainer.log_every_n_steps)
        if trainer.global_step % every == 0:
            self.check()

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not self.skip_steps:
            return
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad = bool(grads) and not bool(torch.isfinite(get_total_norm(grads)))  # NaN and inf propagate to the norm
        if not trainer.strategy.reduce_boolean_decision(bad, all=False):
            return
        if len(self.skipped) >= self.skip_steps:
            raise NonFiniteLossError(
                f"the gradients were not finite at optimizer step {trainer.global_step}, after {len(self.skipped)} "
                f"skipped step(s) {self.skipped} (callbacks.nonfinite_guard.skip_steps={self.skip_steps}): stopped"
            )
        self.skipped.append(trainer.global_step)
        optimizer.zero_grad(set_to_none=True)  # the optimizer skips parameters without a gradient
        pl_module.log("train/skipped_steps", float(len(self.skipped)), on_step=True, on_epoch=False)
        rank_zero_warn(f"skipped optimizer step {trainer.global_step}: its gradients were not finite")

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": list(self.skipped)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = list(state_dict.get("skipped", []))

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
