"""Lightning's ``ThroughputMonitor`` wired to a ``RandomLTDModule``'s batches, timed on logging
steps only (no host sync per micro-batch)."""

from __future__ import annotations

import time
from typing import Annotated, Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ThroughputMonitor
from lightning.pytorch.trainer.states import RunningStage
from lightning.pytorch.utilities import rank_zero_only

from lightning_ltd.callbacks.ledger import is_logging_step
from lightning_ltd.checks.schema import Range, checked
from lightning_ltd.modules.base import RandomLTDModule


class TokenThroughputMonitor(ThroughputMonitor):
    """``ThroughputMonitor`` that reads rows and tokens from ``pl_module.token_shape`` and takes
    the time only where it logs.

    Lightning's monitor calls ``torch.cuda.synchronize()`` after every batch, one host sync per
    micro-batch, which undoes an asynchronous training step (and most of what CUDA graphs buy).
    Here every batch only adds host integers (rows, tokens, FLOPs: all from shapes); the clock is
    read, after one synchronisation, on logging steps and at the end of validation, and each such
    point feeds Lightning's ``Throughput`` with the totals so far. Rates are therefore averages
    over the last ``window_size`` logging points (at least 2: the last logging interval).

    FLOPs come from the module's ``flops_per_batch``, derived from the batch in flight and the
    routers' kept length, so FLOP/s stay honest while the kept length ramps up. Logs what
    ``ThroughputMonitor`` logs: ``train/device/batches_per_sec``, ``train/device/samples_per_sec``,
    ``train/device/items_per_sec`` (tokens), ``train/device/flops_per_sec``, ``train/device/mfu``
    (when the device's peak is known) and the ``train/time``, ``train/batches``, ``train/samples``
    counters; the same under ``validate/`` once per validation.
    """

    @checked
    def __init__(self, window_size: Annotated[int, Range(ge=2)] = 2, **kwargs: Any) -> None:  # two points at least
        super().__init__(batch_size_fn=self._rows, length_fn=self._tokens, window_size=window_size, **kwargs)
        self._module: RandomLTDModule | None = None
        self._pending_flops: dict[RunningStage, float] = {}
        self._step_at_batch_start = 0
        self._validated_batches = 0  # every validation's, the x-axis of the validate/ rates

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"TokenThroughputMonitor needs a RandomLTDModule, got {type(pl_module).__name__}")
        self._module = pl_module
        super().setup(trainer, pl_module, stage)

    def _rows(self, batch: Any) -> int:
        assert self._module is not None
        return self._module.token_shape(batch)[0]

    def _tokens(self, batch: Any) -> int:
        assert self._module is not None
        rows, seq_len = self._module.token_shape(batch)
        return rows * seq_len

    def _start(self, trainer: L.Trainer) -> None:
        super()._start(trainer)
        self._pending_flops[trainer.state.stage] = 0.0  # type: ignore[index]

    @torch.inference_mode()
    def _update(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, iter_num: int) -> None:
        """Count the batch (host integers only); the clock is read in ``_sample``."""
        stage = trainer.state.stage
        assert stage is not None
        self._lengths[stage] += self._tokens(batch)
        self._samples[stage] += self._rows(batch)
        self._batches[stage] += 1
        self._pending_flops[stage] += float(getattr(pl_module, "flops_per_batch", 0.0) or 0.0)

    def _sample(self, trainer: L.Trainer) -> None:
        """One timed point: synchronise once, then hand the totals so far to ``Throughput``."""
        stage = trainer.state.stage
        assert stage is not None
        self._synchronize(trainer)
        flops = self._pending_flops[stage]
        self._pending_flops[stage] = 0.0
        self._throughputs[stage].update(
            time=time.perf_counter() - self._t0s[stage],
            batches=self._batches[stage],
            samples=self._samples[stage],
            lengths=self._lengths[stage],
            flops=flops or None,  # type: ignore[arg-type]
        )

    @staticmethod
    def _synchronize(trainer: L.Trainer) -> None:
        """The one host sync of a timed point (the device has queued work to finish)."""
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._step_at_batch_start = trainer.global_step

    @rank_zero_only
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._update(trainer, pl_module, batch, trainer.fit_loop.total_batch_idx + 1)
        stepped = trainer.global_step != self._step_at_batch_start
        if stepped and is_logging_step(trainer, trainer.global_step):
            self._sample(trainer)
            self._compute(trainer)

    @rank_zero_only
    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any, **__: Any
    ) -> None:
        if not trainer.sanity_checking:
            self._update(trainer, pl_module, batch, 0)

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, *args: Any) -> None:
        if not trainer.sanity_checking and self._batches.get(RunningStage.VALIDATING):
            self._sample(trainer)
            self._validated_batches += self._batches[RunningStage.VALIDATING]
            self._compute(trainer, self._validated_batches)
        if RunningStage.TRAINING in self._t0s:  # not the validation that precedes training (ValidateFirst)
            super().on_validation_end(trainer, *args)
