"""``RandomLTDScheduler``: kept length, routing position, layer-token ledger and learning rate."""

from __future__ import annotations

from typing import Any, Protocol

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from lightning_ltd.errors import int_problems, positive_int_problems, raise_if
from lightning_ltd.ltd import (
    TokenRouter,
    effective_tokens,
    full_layer_tokens,
    layer_tokens_per_step,
    mslg_keep,
    step_seed,
)
from lightning_ltd.ltd.ledger import LayerTokenLedger
from lightning_ltd.ltd.lr import RunShape, ScheduledLayerTokens
from lightning_ltd.models.compile import allow_recompiles, count_graphs
from lightning_ltd.modules.base import RandomLTDModule
from lightning_ltd.resume import data_source


class LRSchedule(Protocol):
    """What the callback needs of an LR schedule (``LayerTokenLR``, ``StepLR``)."""

    unit: str  # "layer_tokens" or "steps": what ``progress`` counts
    budget: int | None  # layer-tokens after which to stop, or None

    def resolve(self, shape: RunShape) -> None: ...

    def lr(self, progress: float, base_lr: float) -> float: ...


class RandomLTDScheduler(Callback):
    """Drive random-LTD: the MSLG kept length, the routing plan, the ledger and the LR.

    Before each training micro-batch it sets, on the module's ``TokenRouter`` (the one place the
    kept length lives), ``keep = mslg_keep(global_step, ...)`` (optimizer steps, so gradient
    accumulation does not speed the ramp up) and the plan position (step, micro-batch), so the
    kept indices are a pure function of (seed, rank, step, micro-batch, layer); with
    ``step_seeding`` the global RNG (dropout) is reseeded from the same coordinates, so a
    resumed run needs no RNG state. Once per optimizer step the LR of every parameter group
    becomes ``lr.lr(progress, initial_lr)`` with progress in scheduled layer-tokens
    (``LayerTokenLR``) or steps (``StepLR``); with a budget, training stops at the first
    optimizer step that reaches it.

    Nothing here synchronises the host with the device or talks to other ranks per
    micro-batch: scheduled layer-tokens are computed from the step (the same on every rank),
    and the observed ledger is counted from host integers and summed over ranks only on
    logging steps, at checkpoints and at the end.

    Logged on logging steps: ``train/keep``, ``train/layer_tokens``, ``train/effective_tokens``
    (layer-tokens / layers, Megatron's count), ``train/schedule_saving`` (layer-tokens skipped so
    far against the same batches at full length) and ``train/lr``.

    Args:
        enabled: False runs the plain baseline but still counts layer-tokens and drives the LR.
        min_keep: kept length at step 0.
        max_keep: kept length at the end of the ramp; None: the model's sequence length.
        ramp_steps: optimizer steps over which the kept length grows.
        granularity: kept lengths are multiples of this (the paper's "step", 8 or 16).
        lr: learning-rate schedule; None leaves the optimizer's LR alone.
        step_seeding: reseed the global RNG before every training micro-batch.
    """

    def __init__(
        self,
        enabled: bool = True,
        min_keep: int = 32,
        max_keep: int | None = None,
        ramp_steps: int = 1000,
        granularity: int = 8,
        lr: LRSchedule | None = None,
        step_seeding: bool = True,
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
        self.step_seeding = step_seeding
        self.ledger = LayerTokenLedger()
        self.current_keep: int | None = None
        self.current_lr: float | None = None
        self.budget_stop_step: int | None = None  # the step at which the layer-token budget stopped training
        self._scheduled: ScheduledLayerTokens | None = None
        self._nominal_len: int | None = None
        self._n_dropping = 0
        self._routers: list[TokenRouter] = []
        self._data_source: str | None = None
        self._seed = 0
        self._step_at_batch_start = -1
        self._micro_batch = 0
        self._batch_shape = (0, 0)  # (rows, width) of the current micro-batch

    # ---- the schedule ----------------------------------------------------------------------

    def keep_at(self, step: int) -> int | None:
        """The kept length for optimizer step ``step`` (None when dropping is disabled)."""
        if not self.enabled:
            return None
        if self.max_keep is None:
            raise RuntimeError("max_keep is unknown until setup() has seen the module")
        return mslg_keep(step, self.min_keep, self.max_keep, self.ramp_steps, self.granularity)

    def distinct_keeps(self) -> list[int | None]:
        """Every kept length the whole schedule uses, ascending (each is one compiled graph)."""
        if not self.enabled:
            return [None]
        return sorted({self.keep_at(t) for t in range(self.ramp_steps + 1)})  # type: ignore[type-var]

    @property
    def layer_tokens(self) -> int:
        """Layer-tokens consumed over all ranks, as of the last sync."""
        return self.ledger.consumed

    @property
    def full_layer_tokens(self) -> int:
        """Layer-tokens the same batches would have cost at full length (synced total)."""
        return self.ledger.full

    @property
    def saving(self) -> float:
        """Theoretical layer-token saving of the run so far (vs the same batches at full length)."""
        return self.ledger.saving

    # ---- hooks -------------------------------------------------------------------------------

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"RandomLTDScheduler needs a RandomLTDModule, got {type(pl_module).__name__}")
        pl_module.check_contract()  # before the scheduler reads num_layers and max_seq_len
        self._n_dropping = len(pl_module.ltd_layers())  # fixed by the architecture: look up once
        self._routers = pl_module.routers()
        self._seed = pl_module.ltd_seed
        if self.enabled and not self._n_dropping:
            raise ValueError(f"{type(pl_module).__name__} has no RandomLTD layers to drive")
        self._data_source = data_source(trainer.datamodule)
        data_len = getattr(trainer.datamodule, "block_size", None) if trainer.datamodule is not None else None
        self._nominal_len = min(pl_module.max_seq_len, data_len) if data_len else None
        if self.max_keep is None:
            self.max_keep = self._nominal_len or pl_module.max_seq_len
            if self.enabled and self.min_keep > self.max_keep:
                raise_if([f"min_keep={self.min_keep} must be <= max_keep={self.max_keep} (the sequence length)"])
        widths = getattr(trainer.datamodule, "widths", None) if trainer.datamodule is not None else None
        allow_recompiles(count_graphs(widths or [self._nominal_len or pl_module.max_seq_len], self.distinct_keeps()))

    def run_shape(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any) -> RunShape:
        """One optimizer step at the nominal width (the data's block size, else this batch's)."""
        rows, seq_len = pl_module.token_shape(batch)
        return RunShape(
            global_batch=rows * trainer.world_size * trainer.accumulate_grad_batches,
            seq_len=self._nominal_len or seq_len,
            n_layer=pl_module.num_layers,
            n_dropping=self._n_dropping,
            keep_at=self.keep_at,
        )

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any, batch_idx: int) -> None:
        step = trainer.global_step
        new_step = step != self._step_at_batch_start
        self._micro_batch = 0 if new_step else self._micro_batch + 1
        self._step_at_batch_start = step
        self.current_keep = self.keep_at(step)
        rows, seq_len = self._batch_shape = pl_module.token_shape(batch)
        # None when this batch is not longer than the kept length: one graph per (width, kept length)
        routed = None if self.current_keep is None or self.current_keep >= seq_len else self.current_keep
        for router in self._routers:
            router.keep = routed
            router.set_position(step, self._micro_batch)
        if self.step_seeding:
            torch.manual_seed(step_seed(self._seed, pl_module.global_rank, step, self._micro_batch))
        pl_module.flops_per_batch = pl_module.training_flops(rows, seq_len, self.current_keep)
        if self._scheduled is None:
            self._scheduled = ScheduledLayerTokens(self.run_shape(trainer, pl_module, batch))
            if self.lr_schedule is not None:  # totals in tokens or steps need the run's shape: known now
                self.lr_schedule.resolve(self._scheduled.shape)
        if self.lr_schedule is not None and new_step:
            self._set_lr(trainer, self.lr_schedule, step)  # once per optimizer step, not per micro-batch

    def _set_lr(self, trainer: L.Trainer, schedule: LRSchedule, step: int) -> None:
        assert self._scheduled is not None
        progress = self._scheduled.before(step) if schedule.unit == "layer_tokens" else step
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                base = group.setdefault("initial_lr", group["lr"])  # saved with the optimizer state
                group["lr"] = schedule.lr(progress, base)
        self.current_lr = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: RandomLTDModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        rows, seq_len = self._batch_shape  # read at the batch's start
        n_layer = pl_module.num_layers
        self.ledger.add(
            layer_tokens_per_step(rows, seq_len, self.current_keep, n_layer, self._n_dropping),
            full_layer_tokens(rows, seq_len, n_layer),
        )
        if trainer._logger_connector.should_update_logs:  # Lightning writes logs on this step only
            self.sync(trainer)
            effective_keep = seq_len if self.current_keep is None else min(self.current_keep, seq_len)
            metrics = {
                "train/keep": float(effective_keep),
                "train/layer_tokens": float(self.layer_tokens),
                "train/effective_tokens": effective_tokens(self.layer_tokens, n_layer),
                "train/schedule_saving": self.saving,
            }
            if self.current_lr is not None:
                metrics["train/lr"] = self.current_lr
            pl_module.log_dict(metrics, on_step=True, on_epoch=False)
        budget = None if self.lr_schedule is None else self.lr_schedule.budget
        stepped = trainer.global_step != self._step_at_batch_start
        scheduled = self._scheduled
        if budget is not None and stepped and scheduled is not None and scheduled.before(trainer.global_step) >= budget:
            trainer.should_stop = True
            self.budget_stop_step = trainer.global_step

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

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        """Every rank runs this when a checkpoint is written: sync, then store the synced totals
        (Lightning collected ``state_dict`` just before, possibly with counts still pending)."""
        self.sync(trainer)
        checkpoint.setdefault("callbacks", {})[self.state_key] = self.state_dict()

    def state_dict(self) -> dict[str, Any]:
        """The ledger, kept length and LR, and the data source (a resume checks it is the same)."""
        return {
            **self.ledger.state_dict(),
            "current_keep": self.current_keep,
            "current_lr": self.current_lr,
            "data_source": self._data_source,
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.ledger.load_state_dict(state_dict)
        self.current_keep = state_dict["current_keep"]
        self.current_lr = state_dict.get("current_lr")

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._step_at_batch_start = -1  # the first batch (also after a resume) is micro-batch 0
        self._scheduled = None  # rebuilt from the first batch's shape
