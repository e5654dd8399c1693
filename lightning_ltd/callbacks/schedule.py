"""``RandomLTDScheduler``: kept length, layer-token ledger and learning rate, every step."""

from __future__ import annotations

from typing import Any, Protocol

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_ltd.errors import int_problems, positive_int_problems, raise_if
from lightning_ltd.ltd import full_layer_tokens, layer_tokens_per_step, mslg_keep, theoretical_saving
from lightning_ltd.ltd.lr import RunShape
from lightning_ltd.models.compile import allow_recompiles
from lightning_ltd.modules.base import RandomLTDModule


class LRSchedule(Protocol):
    """What the callback needs of an LR schedule (``LayerTokenLR``, ``StepLR``)."""

    unit: str  # "layer_tokens" or "steps": what ``progress`` counts
    budget: int | None  # layer-tokens after which to stop, or None

    def resolve(self, shape: RunShape) -> None: ...

    def lr(self, progress: float, base_lr: float) -> float: ...


class RandomLTDScheduler(Callback):
    """Drive random-LTD: the MSLG kept length, the layer-token ledger and the learning rate.

    Before each training batch the kept length becomes ``mslg_keep(global_step, ...)``
    (optimizer steps, so gradient accumulation does not speed the ramp up), the learning rate
    of every parameter group becomes ``lr.lr(progress, initial_lr)`` with progress in consumed
    layer-tokens (``LayerTokenLR``) or steps (``StepLR``), and the module's
    ``flops_per_batch`` follows the kept length (for ``ThroughputMonitor``). After each batch
    the layer-tokens it consumed, summed over data-parallel ranks, are added to the ledger
    next to what full-length training would have consumed; with a budget, training stops at
    the first optimizer step that reaches it.

    Args:
        enabled: False runs the plain baseline but still counts layer-tokens and drives the LR.
        min_keep: kept length at step 0.
        max_keep: kept length at the end of the ramp; None: the model's sequence length.
        ramp_steps: optimizer steps over which the kept length grows.
        granularity: kept lengths are multiples of this (the paper's "step", 8 or 16).
        lr: learning-rate schedule; None leaves the optimizer's LR alone.
    """

    def __init__(
        self,
        enabled: bool = True,
        min_keep: int = 32,
        max_keep: int | None = None,
        ramp_steps: int = 1000,
        granularity: int = 8,
        lr: LRSchedule | None = None,
    ) -> None:
        sizes = {"min_keep": min_keep, "granularity": granularity}
        problems = positive_int_problems(**sizes, **({} if max_keep is None else {"max_keep": max_keep}))
        if not problems and max_keep is not None and min_keep > max_keep:
            problems.append(f"min_keep={min_keep} must be <= max_keep={max_keep}")
        problems += int_problems(0, ramp_steps=ramp_steps)
        raise_if(problems)
        self.enabled = enabled
        self.min_keep = min_keep
        self.max_keep = max_keep
        self.ramp_steps = ramp_steps
        self.granularity = granularity
        self.lr_schedule = lr
        self.layer_tokens = 0
        self.full_layer_tokens = 0
        self.current_keep: int | None = None
        self.current_lr: float | None = None
        self._step_at_batch_start = 0
        self._lr_step: int | None = None
        self._lr_resolved = False
        self._n_dropping = 0

    def keep_at(self, step: int) -> int | None:
        """The kept length for optimizer step ``step`` (None when dropping is disabled)."""
        if not self.enabled:
            return None
        if self.max_keep is None:
            raise RuntimeError("max_keep is unknown until setup() has seen the module")
        return mslg_keep(step, self.min_keep, self.max_keep, self.ramp_steps, self.granularity)

    @property
    def saving(self) -> float:
        """Theoretical layer-token saving of the run so far."""
        return theoretical_saving(self.layer_tokens, self.full_layer_tokens)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"RandomLTDScheduler needs a RandomLTDModule, got {type(pl_module).__name__}")
        self._n_dropping = len(pl_module.ltd_layers())  # fixed by the architecture: count once
        if self.enabled and not self._n_dropping:
            raise ValueError(f"{type(pl_module).__name__} has no RandomLTD layers to drive")
        if self.max_keep is None:
            data_len = getattr(trainer.datamodule, "block_size", None) if trainer.datamodule is not None else None
            self.max_keep = min(pl_module.max_seq_len, data_len or pl_module.max_seq_len)
            if self.enabled and self.min_keep > self.max_keep:
                raise_if([f"min_keep={self.min_keep} must be <= max_keep={self.max_keep} (the sequence length)"])
        allow_recompiles(self.distinct_keeps())  # harmless unless blocks are compiled

    def distinct_keeps(self) -> int:
        """How many kept lengths the whole schedule uses (each is one compiled graph)."""
        return len({self.keep_at(t) for t in range(self.ramp_steps + 1)}) if self.enabled else 1

    def run_shape(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any) -> RunShape:
        rows, seq_len = pl_module.token_shape(batch)
        return RunShape(
            global_batch=rows * trainer.world_size * trainer.accumulate_grad_batches,
            seq_len=seq_len,
            n_layer=pl_module.num_layers,
            n_dropping=self._n_dropping,
            keep_at=self.keep_at,
        )

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any, batch_idx: int) -> None:
        self._step_at_batch_start = trainer.global_step
        self.current_keep = self.keep_at(trainer.global_step)
        pl_module.keep = self.current_keep
        rows, seq_len = pl_module.token_shape(batch)
        pl_module.flops_per_batch = pl_module.training_flops(rows, seq_len, self.current_keep)
        if self.lr_schedule is not None and self._lr_step != trainer.global_step:
            self._set_lr(trainer, pl_module, batch)  # once per optimizer step, not per micro-batch
            self._lr_step = trainer.global_step

    def _set_lr(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any) -> None:
        schedule = self.lr_schedule
        assert schedule is not None
        if not self._lr_resolved:  # totals in tokens or steps need the run's shape: known now
            schedule.resolve(self.run_shape(trainer, pl_module, batch))
            self._lr_resolved = True
        progress = self.layer_tokens if schedule.unit == "layer_tokens" else trainer.global_step
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                base = group.setdefault("initial_lr", group["lr"])  # saved with the optimizer state
                group["lr"] = schedule.lr(progress, base)
        self.current_lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: RandomLTDModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        rows, seq_len = pl_module.token_shape(batch)
        n_layer, n_dropping = pl_module.num_layers, self._n_dropping
        step_counts = torch.tensor(
            [
                layer_tokens_per_step(rows, seq_len, self.current_keep, n_layer, n_dropping),
                full_layer_tokens(rows, seq_len, n_layer),
            ],
            dtype=torch.float64,
            device=pl_module.device,
        )
        consumed, full = trainer.strategy.reduce(step_counts, reduce_op="sum").tolist()
        self.layer_tokens += int(consumed)
        self.full_layer_tokens += int(full)
        effective_keep = seq_len if self.current_keep is None else min(self.current_keep, seq_len)
        metrics = {
            "train/keep": float(effective_keep),
            "train/layer_tokens": float(self.layer_tokens),
            "train/layer_token_saving": self.saving,
        }
        if self.current_lr is not None:
            metrics["train/lr"] = self.current_lr
        pl_module.log_dict(metrics, on_step=True, on_epoch=False)
        budget = None if self.lr_schedule is None else self.lr_schedule.budget
        stepped = trainer.global_step != self._step_at_batch_start
        if budget is not None and stepped and self.layer_tokens >= budget:
            trainer.should_stop = True

    def state_dict(self) -> dict[str, Any]:
        return {
            "layer_tokens": self.layer_tokens,
            "full_layer_tokens": self.full_layer_tokens,
            "current_keep": self.current_keep,
            "current_lr": self.current_lr,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.layer_tokens = int(state_dict["layer_tokens"])
        self.full_layer_tokens = int(state_dict["full_layer_tokens"])
        self.current_keep = state_dict["current_keep"]
        self.current_lr = state_dict.get("current_lr")
