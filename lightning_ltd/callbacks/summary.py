"""``RunSummary``: the end-of-run report (quality, layer-tokens, theoretical saving, time)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info

from lightning_ltd.callbacks.schedule import RandomLTDScheduler


class RunSummary(Callback):
    """Collects ``summary`` (a dict of plain numbers) at the end of ``fit`` and prints it.

    Validation metrics from a ``trainer.validate`` run before ``fit`` are reported as the
    starting point, so the summary shows how far training moved them.

    Logs nothing itself; the summary holds ``steps``, ``layer_tokens``, ``full_layer_tokens``,
    ``theoretical_saving``, ``wall_time_s``, ``tokens_per_s`` and, for each validation
    metric, its value and ``<metric>_start``.
    """

    def __init__(self, metrics: Sequence[str] = ("val/loss", "val/ppl")) -> None:
        self.metrics = tuple(metrics)
        self.start_metrics: dict[str, float] = {}
        self.summary: dict[str, Any] = {}
        self._t0 = 0.0

    def _read(self, trainer: L.Trainer) -> dict[str, float]:
        found = trainer.callback_metrics
        return {name: float(found[name]) for name in self.metrics if name in found}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not self.start_metrics:
            self.start_metrics = self._read(trainer)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        summary: dict[str, Any] = {"steps": trainer.global_step, "wall_time_s": time.perf_counter() - self._t0}
        summary.update(self._read(trainer))
        summary.update({f"{name}_start": value for name, value in self.start_metrics.items()})
        scheduler = next((c for c in trainer.callbacks if isinstance(c, RandomLTDScheduler)), None)
        if scheduler is not None:
            n_layer = getattr(pl_module, "num_layers", 0)
            if n_layer and summary["wall_time_s"] > 0:
                summary["tokens_per_s"] = scheduler.full_layer_tokens / n_layer / summary["wall_time_s"]
            summary["layer_tokens"] = scheduler.layer_tokens
            summary["full_layer_tokens"] = scheduler.full_layer_tokens
            summary["theoretical_saving"] = scheduler.saving
        self.summary = summary
        rank_zero_info(format_summary(summary))


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["", "==== run summary ===="]
    for name in [k for k in summary if k.startswith("val/") and not k.endswith("_start")]:
        if name in summary:
            start = summary.get(f"{name}_start")
            before = f"{start:.4f} -> " if start is not None else ""
            lines.append(f"{name:<22}{before}{summary[name]:.4f}")
    if "layer_tokens" in summary:
        lines.append(
            f"{'layer-tokens':<22}{summary['layer_tokens']:,} of {summary['full_layer_tokens']:,} (full length)"
        )
        lines.append(f"{'theoretical saving':<22}{100 * summary['theoretical_saving']:.1f} %")
    lines.append(f"{'optimizer steps':<22}{summary['steps']}")
    lines.append(f"{'wall time':<22}{summary['wall_time_s']:.1f} s (training loop, validation included)")
    if "tokens_per_s" in summary:
        lines.append(f"{'throughput':<22}{summary['tokens_per_s']:,.0f} training tokens/s")
    return "\n".join(lines)
