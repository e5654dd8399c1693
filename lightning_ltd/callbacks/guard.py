"""``NonFiniteLossGuard``: stop at the first non-finite loss or gradient, on every rank, before a checkpoint."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn
from torch.nn.utils import get_total_norm

from lightning_ltd.checks.schema import Count, PositiveInt, checked
from lightning_ltd.errors import NonFiniteLossError


class NonFiniteLossGuard(Callback):
    """Stop at the first optimizer step whose training loss or gradients are not finite, on every
    rank at once, and never write a checkpoint from a non-finite state.

    Each rank records its first bad step on the device (``torch.where`` into a one-element tensor:
    the loss at every micro-batch end, the gradient norm before every optimizer step), so the
    guard adds no host synchronisation per micro-batch. The ranks' records are reduced (the
    earliest bad step of any rank) every ``check_every_n_steps`` steps (default: the trainer's
    ``log_every_n_steps``), before every checkpoint and at the end of training: all ranks reach
    the same decision at the same point and raise ``NonFiniteLossError`` together, so none is left
    waiting in a collective. One rank's NaN poisons every rank's weights through the gradient
    all-reduce; a checkpoint is also refused when any rank holds a non-finite weight.

    With ``skip_steps`` > 0 the guard instead drops the update of a step whose gradients are not
    finite on any rank (every gradient is cleared, so the optimizer leaves weights and moments as
    they were) and stops only at the ``skip_steps + 1``-th such step. Deciding before the update
    costs one host synchronisation per optimizer step. It needs the gradients on the parameters,
    which DeepSpeed ZeRO partitions away (refused at setup). The skipped steps are logged as
    ``train/skipped_steps``.

    Args:
        check_every_n_steps: how often the ranks reduce their records (None: ``log_every_n_steps``).
        skip_steps: how many non-finite optimizer steps to skip before stopping (0: stop at the first).
    """

    @checked
    def __init__(self, check_every_n_steps: PositiveInt | None = None, skip_steps: Count = 0) -> None:
        self.check_every_n_steps = check_every_n_steps
        self.skip_steps = skip_steps
        self.skipped: list[int] = []
        self._first_bad: torch.Tensor | None = None
        self._step = 0
        self._checked_at = -1

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.skip_steps and "deepspeed" in type(trainer.strategy).__name__.lower():
            raise ValueError(
                f"callbacks.nonfinite_guard.skip_steps={self.skip_steps}: DeepSpeed partitions the gradients, "
                "so a step cannot be skipped; use skip_steps=0 (stop at the first non-finite step)"
            )

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._first_bad = torch.full((), NO_STEP, dtype=torch.long, device=trainer.strategy.root_device)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._step = trainer.global_step  # the step this batch belongs to (as metrics.csv numbers it)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        loss = outputs["loss"] if isinstance(outputs, dict) else outputs
        if not self.skip_steps and isinstance(loss, torch.Tensor):  # when skipping, the gradients judge
            self._record(~torch.isfinite(loss.detach()))
        every = self.check_every_n_steps or max(1, trainer.log_every_n_steps)
        if trainer.global_step % every == 0 and trainer.global_step != self._checked_at:  # once per such step
            self._checked_at = trainer.global_step
            self.check(trainer)

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        bad = ~torch.isfinite(get_total_norm(grads)) if grads else None  # NaN and inf propagate to the norm
        if not self.skip_steps:
            if bad is not None:  # DeepSpeed ZeRO holds no gradients on the parameters: the loss judges
                self._record(bad)  # on the device
            return
        if not trainer.strategy.reduce_boolean_decision(bool(bad), all=False):
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

    def _record(self, bad: torch.Tensor) -> None:
        """Keep the first step at which ``bad`` held (a device op: no host sync)."""
        assert self._first_bad is not None, "on_train_start creates the record"
        bad = bad.to(self._first_bad.device) & (self._first_bad == NO_STEP)
        self._first_bad = torch.where(bad, self._step, self._first_bad)

    def state_dict(self) -> dict[str, Any]:
        return {"skipped": list(self.skipped)}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.skipped = list(state_dict.get("skipped", []))

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Every rank runs this before any writes: raising here aborts the save everywhere."""
        self.check(trainer)
        finite = [torch.isfinite(p.detach()).all() for p in pl_module.parameters() if p.numel()]
        local_bad = bool(finite) and not bool(torch.stack(finite).all())  # one host sync per save
        if trainer.strategy.reduce_boolean_decision(local_bad, all=False):
            raise NonFiniteLossError(
                f"a weight was not finite at optimizer step {trainer.global_step}: stopped, no checkpoint written "
                "(lower model.lr, check the data, or resume from the last good checkpoint)"
            )

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.check(trainer)

    def check(self, trainer: L.Trainer) -> None:
        """Raise ``NonFiniteLossError`` on every rank if any rank recorded a non-finite step (a
        collective: every rank calls it at the same point)."""
        if self._first_bad is None:
            return  # training has not started: nothing recorded anywhere
        recorded = trainer.strategy.all_gather(self._first_bad).reshape(-1)
        first_bad = int(torch.where(recorded == NO_STEP, torch.iinfo(torch.long).max, recorded).min())
        if first_bad != torch.iinfo(torch.long).max:
            raise NonFiniteLossError(
                f"the training loss or its gradients were not finite at optimizer step {first_bad}: stopped, no "
                "checkpoint written after it (lower model.lr, check the data, or resume from the last good checkpoint)"
            )


NO_STEP = -1
"""The record's value while every step so far was finite."""
