"""The schema of the run's own keys (``train.yaml``'s top level) and of the ``Trainer`` keys that
Lightning's annotations let through but it then misuses or rejects mid-run."""

from __future__ import annotations

from typing import Annotated, Literal

from lightning_ltd.schema import Bounds, Count, NonNegativeFloat, PositiveInt, Seed, overlay

EpochFraction = Annotated[float, Bounds(0, 1, low_open=True, high_open=False)]
BatchFraction = Annotated[float, Bounds(0, 1, high_open=False)]


class RunSettings:
    """``train.yaml``'s own keys."""

    seed: Seed | None
    ckpt_path: str | None
    validate_before_fit: bool
    required_keys: list[str]
    paths: dict[str, str]


@overlay("lightning.pytorch.loggers.CSVLogger")
class CSVLoggerSettings:
    """``flush_logs_every_n_steps=0`` divides by zero at the first logged step."""

    flush_logs_every_n_steps: PositiveInt


@overlay("lightning.pytorch.callbacks.TQDMProgressBar")
class ProgressBarSettings:
    """A negative refresh rate runs, drawing nothing useful (0 switches the bar off)."""

    refresh_rate: Count


@overlay("lightning.pytorch.Trainer")
class TrainerSettings:
    """Narrower than ``lightning.pytorch.Trainer``'s annotations where a value it accepts would
    run wrong (``max_steps=0``) or fail later without naming the key."""

    max_steps: PositiveInt | Literal[-1]
    max_epochs: Annotated[int, Bounds(-1)] | None
    val_check_interval: PositiveInt | EpochFraction | None
    check_val_every_n_epoch: PositiveInt | None
    log_every_n_steps: PositiveInt | None  # 0 would log nothing and leave the NaN guard unchecked
    accumulate_grad_batches: PositiveInt
    gradient_clip_val: NonNegativeFloat | None
    limit_train_batches: PositiveInt | EpochFraction | None  # 0 would train nothing and exit 0
    limit_val_batches: Count | BatchFraction | None
    num_sanity_val_steps: Annotated[int, Bounds(-1)] | None
