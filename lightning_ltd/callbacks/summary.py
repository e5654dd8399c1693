"""``RunSummary``: the end-of-run report (quality, layer-tokens, the two savings, time)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from lightning_ltd.callbacks.curriculum import Curriculum
from lightning_ltd.callbacks.schedule import RandomLTDScheduler
from lightning_ltd.checks.schema import PositiveFloat, checked
from lightning_ltd.ltd import budget_saving, effective_tokens

DEFAULT_METRICS = ("val/loss",)
"""What the summary reports of a module that does not declare its ``validation_metrics``."""


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
    validation metric, its value and ``<metric>_start``. Token counts are the whole run's;
    ``wall_time_s``, ``tokens_per_s`` and ``segment_steps`` are this ``fit``'s (a resumed run
    reports its own segment, with ``resumed_from_step``). ``budget_stop_step`` says that the
    layer-token budget ended the run. At the end of ``fit`` it logs ``summary/schedule_saving``,
    ``summary/budget_saving`` and ``summary/effective_tokens``.

    The reported metrics are those of the final state: when the run's last optimizer step is
    not a validation step, it asks Lightning to stop there (``trainer.should_stop``), which runs
    one more validation, so ``trainer.max_steps=20`` under a 300-step validation interval still
    ends with ``val/loss``.

    Args:
        metrics: the validation metrics to report; None: those the module declares it logs
            (``validation_metrics``), else ``val/loss``.
        baseline_tokens: the baseline's budget in (effective = data) tokens; None: no budget saving.
    """

    @checked
    def __init__(self, metrics: Sequence[str] | None = None, baseline_tokens: PositiveFloat | None = None) -> None:
        self.requested_metrics = None if metrics is None else tuple(metrics)
        self.metrics: tuple[str, ...] = self.requested_metrics or DEFAULT_METRICS
        self.baseline_tokens = baseline_tokens
        self.start_metrics: dict[str, float] = {}
        self.summary: dict[str, Any] = {}
        self._t0 = 0.0
        self._start_step = 0
        self._start_full_tokens = 0

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.requested_metrics is None:
            self.metrics = tuple(getattr(pl_module, "validation_metrics", None) or DEFAULT_METRICS)  # absent: skipped

    def _read(self, trainer: L.Trainer) -> dict[str, float]:
        found = trainer.callback_metrics
        return {name: float(found[name]) for name in self.metrics if name in found}

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The first validation before any training step (``trainer.validate`` or ``ValidateFirst``)
        is the starting point."""
        if trainer.global_step == 0 and not trainer.sanity_checking and not self.start_metrics:
            self.start_metrics = self._read(trainer)

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t0 = time.perf_counter()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Where this ``fit`` starts (after a resume restored the step and the ledger)."""
        self._start_step = trainer.global_step
        scheduler = find_scheduler(trainer)
        self._start_full_tokens = scheduler.ledger.full if scheduler is not None else 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        if is_final_batch(trainer):
            trainer.should_stop = True  # Lightning validates before it stops: the summary's final metrics

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        summary: dict[str, Any] = {"steps": trainer.global_step, "wall_time_s": time.perf_counter() - self._t0}
        summary["segment_steps"] = trainer.global_step - self._start_step
        if self._start_step:
            summary["resumed_from_step"] = self._start_step
        summary.update(self._read(trainer))
        summary.update({f"{name}_start": value for name, value in self.start_metrics.items()})
        scheduler = find_scheduler(trainer)
        if scheduler is not None:
            summary.update(self._token_counts(scheduler, getattr(pl_module, "num_layers", 0), summary["wall_time_s"]))
            if scheduler.budget_stop_step is not None:
                summary["budget_stop_step"] = scheduler.budget_stop_step
        curriculum = next((c for c in trainer.callbacks if isinstance(c, Curriculum)), None)
        if curriculum is not None and curriculum.lengths is not None:
            summary["data_saving"] = curriculum.lengths.data_saving(trainer.global_step)
        self.summary = summary
        logged = {f"summary/{k}": float(summary[k]) for k in LOGGED_AT_END if k in summary}
        for logger in trainer.loggers if logged else []:
            logger.log_metrics(logged, step=trainer.global_step)
        rank_zero_info(format_summary(summary))

    def _token_counts(self, scheduler: RandomLTDScheduler, n_layer: int, wall_time: float) -> dict[str, Any]:
        """The whole run's layer-tokens and savings; this segment's throughput."""
        counts: dict[str, Any] = {
            "layer_tokens": scheduler.ledger.consumed,
            "full_layer_tokens": scheduler.ledger.full,
            "schedule_saving": scheduler.ledger.saving,
        }
        if not n_layer:
            return counts
        if wall_time > 0:  # tokens read in this segment
            counts["tokens_per_s"] = (
                effective_tokens(scheduler.ledger.full - self._start_full_tokens, n_layer) / wall_time
            )
        counts["effective_tokens"] = effective_tokens(scheduler.ledger.consumed, n_layer)
        if self.baseline_tokens is not None:
            counts["baseline_tokens"] = self.baseline_tokens
            counts["budget_saving"] = budget_saving(scheduler.ledger.consumed, n_layer, self.baseline_tokens)
        return counts


def find_scheduler(trainer: L.Trainer) -> RandomLTDScheduler | None:
    return next((c for c in trainer.callbacks if isinstance(c, RandomLTDScheduler)), None)


def is_final_batch(trainer: L.Trainer) -> bool:
    """Whether the batch just trained completes the run: ``max_steps`` reached, or the last
    batch of the last epoch."""
    if trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step:
        return True
    last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= trainer.current_epoch + 1
    return last_epoch and bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


LOGGED_AT_END = ("schedule_saving", "budget_saving", "data_saving", "effective_tokens")
"""Summary entries also written to the logger as ``summary/<name>``."""


def format_summary(summary: dict[str, Any]) -> str:
    lines = ["", "==== run summary ===="]
    for name in [k for k in summary if k.startswith("val/") and not k.endswith("_start")]:
        if name in summary:
            start = summary.get(f"{name}_start")
            before = f"{start:.4f} -> " if start is not None else ""
            lines.append(f"{name:<22}{before}{summary[name]:.4f}")
    if "layer_tokens" in summary:
        lengths = "curriculum lengths" if "data_saving" in summary else "full sequence length"
        counted = f"{summary['layer_tokens']:,} of {summary['full_layer_tokens']:,} at {lengths}"
        lines.append(f"{'layer-tokens':<22}{counted}")
        lines.append(
            f"{'schedule saving':<22}{100 * summary['schedule_saving']:.1f} % (vs the same batches without dropping)"
        )
    if "data_saving" in summary:
        lines.append(
            f"{'data saving':<22}{100 * summary['data_saving']:.1f} % (the length curriculum's rows against "
            "the same steps at its max_len; an upper bound where rows are shorter)"
        )
    if "budget_saving" in summary:
        lines.append(
            f"{'budget saving':<22}{100 * summary['budget_saving']:.1f} % ({summary['effective_tokens']:,.0f} "
            f"effective tokens vs the baseline's {summary['baseline_tokens']:,.0f})"
        )
    steps = f"{summary['steps']}"
    if "resumed_from_step" in summary:
        steps += f" ({summary['segment_steps']} in this run, resumed from step {summary['resumed_from_step']})"
    lines.append(f"{'optimizer steps':<22}{steps}")
    if "budget_stop_step" in summary:
        lines.append(f"{'stopped':<22}by the layer-token budget at step {summary['budget_stop_step']}")
    lines.append(f"{'wall time':<22}{summary['wall_time_s']:.1f} s (training loop, validation included)")
    if "tokens_per_s" in summary:
        lines.append(f"{'throughput':<22}{summary['tokens_per_s']:,.0f} training tokens/s")
    return "\n".join(lines)
