"""Callbacks that make training non-finite on demand: for good (poisoned weights) or for one step."""

import torch
from lightning.pytorch.callbacks import Callback


class PoisonAt(Callback):
    """Weights become NaN at ``step``: a run that has diverged for good."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            with torch.no_grad():
                next(pl_module.parameters()).fill_(float("nan"))


class OneStepFault(Callback):
    """A hook that ``attach`` installs at the given steps (on one data-parallel rank only, when
    ``rank`` is given) and that is removed when the batch ends."""

    def __init__(self, steps: list[int], rank: int | None = None) -> None:
        self.steps = set(steps)
        self.rank = rank
        self._hook = None

    def attach(self, pl_module):
        raise NotImplementedError

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step in self.steps and self.rank in (None, trainer.global_rank):
            self._hook = self.attach(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self._hook is not None:
            self._hook.remove()
            self._hook = None


class BadLossAt(OneStepFault):
    """The loss (and so every gradient) is NaN at the given steps only: a bad batch."""

    def attach(self, pl_module):
        return pl_module.register_forward_hook(lambda module, args, output: output * float("nan"))


class InfGradAt(OneStepFault):
    """At the given steps one weight's gradient is infinite while the loss stays finite: what an
    overflow in backward looks like."""

    def attach(self, pl_module):
        weight = next(p for p in pl_module.parameters() if p.requires_grad)
        return weight.register_hook(lambda grad: grad * float("inf"))
