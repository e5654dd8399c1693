"""``RunSummary``: the end-of-run report (quality, layer-tokens, the two savings, time)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_info

from lightning_ltd.callbacks.schedule import RandomLTDScheduler
from lightning_ltd.errors import InvalidFieldsError, is_number
from lightning_ltd.ltd import budget_saving, effective_tokens


class RunSummary(Callback):
    """Collects ``summary`` (a dict of plain numbers) at the end of ``fit`` and prints it.

    Validation metrics from a ``trainer.validate`` run before ``fit`` are reported as the
    starting point, so the summary shows how far training moved them. Two savings, never to be
    confused:

    - ``schedule_saving``: layer-tokens the dropping schedule skipped against *the same
      batches* at full length (what dropping itself saved in this run);
    - ``budget_saving`` (only with ``baseline_tokens``): compute saved against a baseline run of
      ``baseline_tokens`` full-length tokens, ``1 - effective_tokens / baseline_tokens`` (the
      paper's 33.3 %: a random-LTD run stopped at 200B effective tokens against 300B).

    The summary holds ``steps``, ``layer_tokens``, ``full_layer_tokens``, ``effective_tokens``,
    ``schedule_saving``, ``budget_saving``, ``wall_time_s``, ``tokens_per_s`` and, for each
    validation metric, its value and ``<metric>_start``. At the end of ``fit`` it logs
    ``summary/schedule_saving``, ``summary/budget_saving`` and ``summary/effective_tokens``.

    Args:
        metrics: the validation metrics to report.
        baseline_tokens: the baseline's budget in (effective = data) tokens; None: no budget saving.
    """

    def __init__(self, metrics: Sequence[str] = ("val/loss", "val/ppl"), baseline_tokens: float | None = None) -> None:
        if baseline_tokens is not None and not (is_number(baseline_tokens) and baseline_tokens > 0):
            raise InvalidFieldsError([f"baseline_tokens={baseline_tokens!r} must be a number > 0, or null"])
        self.metrics = tuple(metrics)
        self.baseline_tokens = baseline_tokens
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
                data_tokens = effective_tokens(scheduler.full_layer_tokens, n_layer)  # tokens read
                summary["tokens_per_s"] = data_tokens / summary["wall_time_s"]
            summary["layer_tokens"] = scheduler.layer_tokens
            summary["full_layer_tokens"] = scheduler.full_layer_tokens
            summary["schedule_saving"] = scheduler.saving
            if n_layer:
                summary["effective_tokens"] = effective_tokens(scheduler.layer_tokens, n_layer)
                if self.baseline_tokens is not None:
                    summary["baseline_tokens"] = self.baseline_tokens
                    summary["budget_saving"] = budget_saving(scheduler.layer_tokens, n_layer, self.baseline_tokens)
        self.summary = summary
        logged = {f"summary/{k}": float(summary[k]) for k in LOGGED_AT_END if k in summary}
        if trainer.logger is not None and logged:
            trainer.logger.log_metrics(logged, step=trainer.global_step)
        rank_zero_info(format_summary(summary))


LOGGED_AT_END = ("schedule_saving", "budget_saving", "effective_tokens")
"""Summary entries also written to the logger as ``summary/<name>``."""


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
        lines.append(
            f"{'schedule saving':<22}{100 * summary['schedule_saving']:.1f} % (vs the same batches at full length)"
        )
    if "budget_saving" in summary:
        lines.append(
            f"{'budget saving':<22}{100 * summary['budget_saving']:.1f} % ({summary['effective_tokens']:,.0f} "
            f"effective tokens vs the baseline's {summary['baseline_tokens']:,.0f})"
        )
    lines.append(f"{'optimizer steps':<22}{summary['steps']}")
    lines.append(f"{'wall time':<22}{summary['wall_time_s']:.1f} s (training loop, validation included)")
    if "tokens_per_s" in summary:
        lines.append(f"{'throughput':<22}{summary['tokens_per_s']:,.0f} training tokens/s")
    return "\n".join(lines)
