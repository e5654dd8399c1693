"""Throughput of a ``RandomLTDModule``'s batches, timed on logging steps only (no host sync per
micro-batch), with Lightning's public ``Throughput`` counter."""

from __future__ import annotations

import time
from typing import Annotated, Any

import lightning as L
import torch
from lightning.fabric.utilities.throughput import Throughput, get_available_flops
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_only

from lightning_ltd.callbacks.ledger import is_logging_step
from lightning_ltd.checks.schema import Range, checked
from lightning_ltd.modules.base import RandomLTDModule

COMPUTE_DTYPES = {"bf16": torch.bfloat16, "16": torch.float16, "half": torch.float16, "64": torch.float64}
"""The dtype a precision setting computes in (its leading part): what the device's peak FLOP/s are for."""


class TokenThroughputMonitor(Callback):
    """Rows, tokens and FLOPs per second of training and validation, read off the module.

    Lightning's ``ThroughputMonitor`` calls ``torch.cuda.synchronize()`` after every batch, one
    host sync per micro-batch, which undoes an asynchronous training step (and most of what CUDA
    graphs buy). Here every batch only adds host integers (rows and tokens from
    ``pl_module.token_shape``, FLOPs from ``flops_per_batch``, derived from the batch in flight
    and the routers' kept length, so FLOP/s stay honest while the kept length ramps up); the clock
    is read, after one synchronisation, on logging steps and at the end of each validation, and
    each such point feeds a ``Throughput`` with the totals so far. Rates are averages over the last
    ``window_size`` points (at least 2: the last logging interval).

    Logs what ``ThroughputMonitor`` logs: ``train/device/batches_per_sec``,
    ``train/device/samples_per_sec``, ``train/device/items_per_sec`` (tokens),
    ``train/device/flops_per_sec``, ``train/device/mfu`` (when the device's peak is known) and the
    ``train/time``, ``train/batches``, ``train/samples`` counters; the same under ``validate/``
    once per validation. Public Lightning API only (``Throughput``, the trainer's loggers).
    """

    @checked
    def __init__(self, window_size: Annotated[int, Range(ge=2)] = 2, **kwargs: Any) -> None:  # two points at least
        self.window_size = window_size
        self.kwargs = kwargs  # more of ``Throughput``'s arguments (``separator``)
        self._throughputs: dict[str, Throughput] = {}
        self._totals: dict[str, dict[str, float]] = {}
        self._started: dict[str, float] = {}
        self._step_at_batch_start = 0
        self._validated_batches = 0  # every validation's: the x-axis of the validate/ rates

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"TokenThroughputMonitor needs a RandomLTDModule, got {type(pl_module).__name__}")
        dtype = COMPUTE_DTYPES.get(str(trainer.precision).split("-")[0], torch.float32)
        peak = get_available_flops(trainer.strategy.root_device, dtype)
        self._throughputs = {
            name: Throughput(
                available_flops=peak, world_size=trainer.world_size, window_size=self.window_size, **self.kwargs
            )
            for name in ("train", "validate")
        }

    def _start(self, name: str) -> None:
        self._throughputs[name].reset()
        self._totals[name] = {"batches": 0, "samples": 0, "lengths": 0, "flops": 0.0}
        self._started[name] = time.perf_counter()

    @torch.inference_mode()
    def _count(self, name: str, pl_module: RandomLTDModule, batch: Any) -> None:
        """Count the batch: host integers only (the clock is read in ``_sample``)."""
        rows, seq_len = pl_module.token_shape(batch)
        totals = self._totals[name]
        totals["batches"] += 1
        totals["samples"] += rows
        totals["lengths"] += rows * seq_len
        totals["flops"] += float(getattr(pl_module, "flops_per_batch", 0.0) or 0.0)

    def _sample(self, trainer: L.Trainer, name: str, step: int) -> None:
        """One timed point: synchronise once, hand the totals so far to ``Throughput``, log."""
        self._synchronize(trainer)
        totals = self._totals[name]
        flops, totals["flops"] = totals["flops"], 0.0  # Throughput sums the FLOPs it is given
        throughput = self._throughputs[name]
        throughput.update(
            time=time.perf_counter() - self._started[name],
            batches=int(totals["batches"]),
            samples=int(totals["samples"]),
            lengths=int(totals["lengths"]),
            flops=flops or None,  # type: ignore[arg-type]
        )
        metrics = {f"{name}{throughput.separator}{key}": value for key, value in throughput.compute().items()}
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=step)

    @staticmethod
    def _synchronize(trainer: L.Trainer) -> None:
        """The one host sync of a timed point (the device has queued work to finish)."""
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()

    @rank_zero_only
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start("train")

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        self._step_at_batch_start = trainer.global_step

    @rank_zero_only
    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any
    ) -> None:
        self._count("train", pl_module, batch)  # type: ignore[arg-type]
        if trainer.global_step != self._step_at_batch_start and is_logging_step(trainer, trainer.global_step):
            self._sample(trainer, "train", trainer.global_step - 1)  # the step of the step's own metrics

    @rank_zero_only
    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._start("validate")

    @rank_zero_only
    def on_validation_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, *_: Any, **__: Any
    ) -> None:
        if not trainer.sanity_checking:
            self._count("validate", pl_module, batch)  # type: ignore[arg-type]

    @rank_zero_only
    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        batches = self._totals.get("validate", {}).get("batches", 0)
        if trainer.sanity_checking or not batches:
            return
        self._validated_batches += int(batches)
        self._sample(trainer, "validate", self._validated_batches)
        if "train" in self._started:  # validation time is not training time
            self._started["train"] += time.perf_counter() - self._started["validate"]
