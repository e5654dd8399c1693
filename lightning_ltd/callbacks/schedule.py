"""``RandomLTDScheduler``: sets the kept length every step and counts layer-tokens."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_ltd.errors import positive_int_problems, raise_if
from lightning_ltd.ltd import full_layer_tokens, layer_tokens_per_step, mslg_keep, theoretical_saving
from lightning_ltd.modules.base import RandomLTDModule


class RandomLTDScheduler(Callback):
    """Drive random-LTD from the MSLG schedule and keep the layer-token ledger.

    Before each training batch the kept length becomes ``mslg_keep(global_step, ...)``
    (optimizer steps, so gradient accumulation does not speed the ramp up). After each batch
    the layer-tokens it consumed, summed over data-parallel ranks, are added to the ledger
    next to what full-length training would have consumed.

    Args:
        enabled: False runs the plain baseline but still counts layer-tokens.
        min_keep: kept length at step 0.
        max_keep: kept length at the end of the ramp (usually the sequence length).
        ramp_steps: optimizer steps over which the kept length grows.
        granularity: kept lengths are multiples of this (the paper's "step", 8 or 16).
    """

    def __init__(
        self,
        enabled: bool = True,
        min_keep: int = 32,
        max_keep: int = 128,
        ramp_steps: int = 1000,
        granularity: int = 8,
    ) -> None:
        problems = positive_int_problems(min_keep=min_keep, max_keep=max_keep, granularity=granularity)
        if not problems and min_keep > max_keep:
            problems.append(f"min_keep={min_keep} must be <= max_keep={max_keep}")
        if isinstance(ramp_steps, bool) or not isinstance(ramp_steps, int) or ramp_steps < 0:
            problems.append(f"ramp_steps={ramp_steps!r} must be an integer >= 0")
        raise_if(problems)
        self.enabled = enabled
        self.min_keep = min_keep
        self.max_keep = max_keep
        self.ramp_steps = ramp_steps
        self.granularity = granularity
        self.layer_tokens = 0
        self.full_layer_tokens = 0
        self.current_keep: int | None = None

    def keep_at(self, step: int) -> int | None:
        """The kept length for optimizer step ``step`` (None when dropping is disabled)."""
        if not self.enabled:
            return None
        return mslg_keep(step, self.min_keep, self.max_keep, self.ramp_steps, self.granularity)

    @property
    def saving(self) -> float:
        """Theoretical layer-token saving of the run so far."""
        return theoretical_saving(self.layer_tokens, self.full_layer_tokens)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"RandomLTDScheduler needs a RandomLTDModule, got {type(pl_module).__name__}")
        if self.enabled and not pl_module.ltd_layers():
            raise ValueError(f"{type(pl_module).__name__} has no RandomLTD layers to drive")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any, batch_idx: int) -> None:
        self.current_keep = self.keep_at(trainer.global_step)
        pl_module.keep = self.current_keep

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: RandomLTDModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        rows, seq_len = pl_module.token_shape(batch)
        n_layer, n_dropping = pl_module.num_layers, len(pl_module.ltd_layers())
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
        pl_module.log("train/keep", float(effective_keep), on_step=True, on_epoch=False)
        pl_module.log("train/layer_tokens", float(self.layer_tokens), on_step=True, on_epoch=False)
        pl_module.log("train/layer_token_saving", self.saving, on_step=True, on_epoch=False)

    def state_dict(self) -> dict[str, Any]:
        return {
            "layer_tokens": self.layer_tokens,
            "full_layer_tokens": self.full_layer_tokens,
            "current_keep": self.current_keep,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.layer_tokens = int(state_dict["layer_tokens"])
        self.full_layer_tokens = int(state_dict["full_layer_tokens"])
        self.current_keep = state_dict["current_keep"]
