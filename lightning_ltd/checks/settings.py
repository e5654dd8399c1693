"""The schema of the run's own keys (``train.yaml``'s top level) and of the ``Trainer`` keys that
Lightning's annotations let through but it then misuses or rejects mid-run."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from lightning_ltd.checks.schema import (
    Count,
    Form,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    Range,
    Seed,
)
from lightning_ltd.checks.targets import overlay

EpochFraction = Annotated[float, Range(gt=0, le=1)]
BatchFraction = Annotated[float, Range(ge=0, le=1)]
FiniteFloat = Annotated[float, Range()]
Duration = Annotated[str, Form(r"\s*\d+:\d\d:\d\d:\d\d\s*", "DD:HH:MM:SS")]
"""What Lightning's ``Timer`` parses (``max_time``, a time-based ``val_check_interval``)."""
DurationMapping = dict[
    Literal["weeks", "days", "hours", "minutes", "seconds", "milliseconds", "microseconds"], NonNegativeFloat
]
"""The other form: ``datetime.timedelta``'s arguments (a negative one would stop at once)."""
DeviceString = Annotated[str, Form(r"auto|-1|\d+|\d+(,\d+)*,?", "auto, N or 0,1")]
"""Lightning's device strings: ``auto``, ``-1`` (all), a count, or a comma-separated id list."""


class RunSettings:
    """``train.yaml``'s own keys."""

    seed: Seed  # every run is seeded: the data order, the routing and the step seeds derive from it
    ckpt_path: str | None
    validate_before_fit: bool
    required_keys: list[str]
    paths: dict[str, str]


@overlay("lightning.pytorch.loggers.CSVLogger")
class CSVLoggerSettings:
    """``flush_logs_every_n_steps=0`` divides by zero at the first logged step."""

    flush_logs_every_n_steps: PositiveInt


@overlay("lightning.pytorch.loggers.TensorBoardLogger")
class TensorBoardLoggerSettings:
    """A negative version would name a folder ``version_-1``."""

    version: Count | str | None


@overlay("lightning.pytorch.loggers.WandbLogger")
class WandbLoggerSettings:
    """``WandbLogger``'s own annotations name W&B classes by forward reference, which do not
    resolve without wandb: these are the keys ``logger=wandb`` sets, declared here."""

    save_dir: str
    project: str | None
    name: str | None
    version: str | None
    id: str | None
    offline: bool
    log_model: bool | Literal["all"]
    prefix: str


@overlay("lightning.pytorch.callbacks.TQDMProgressBar")
class ProgressBarSettings:
    """A negative refresh rate runs, drawing nothing useful (0 switches the bar off)."""

    refresh_rate: Count
    process_position: Count


@overlay("lightning.pytorch.Trainer")
class TrainerSettings:
    """Narrower than ``lightning.pytorch.Trainer``'s annotations wherever a value they accept
    would run wrong (``max_steps=0``, ``min_steps=-3``) or fail later without naming the key.
    Every numeric argument is here (``tests/test_settings.py`` holds that); the ones Lightning
    types as objects (``logger``, ``callbacks``, ``plugins``) come from config groups."""

    devices: PositiveInt | Literal[-1] | DeviceString | list[Count]
    num_nodes: PositiveInt
    fast_dev_run: bool | PositiveInt
    max_steps: PositiveInt | Literal[-1]
    min_steps: Count | None
    max_epochs: PositiveInt | Literal[-1] | None  # 0 would train nothing and exit 0
    min_epochs: Count | None
    max_time: Duration | DurationMapping | None
    val_check_interval: PositiveInt | EpochFraction | Duration | DurationMapping | None
    check_val_every_n_epoch: PositiveInt | None
    log_every_n_steps: PositiveInt | None  # 0 would log nothing and leave the NaN guard unchecked
    accumulate_grad_batches: PositiveInt
    gradient_clip_val: NonNegativeFloat | None
    gradient_clip_algorithm: Literal["norm", "value"] | None
    limit_train_batches: PositiveInt | EpochFraction | None  # 0 would train nothing and exit 0
    limit_val_batches: Count | BatchFraction | None
    limit_test_batches: Count | BatchFraction | None
    limit_predict_batches: Count | BatchFraction | None
    overfit_batches: Count | BatchFraction
    num_sanity_val_steps: Annotated[int, Range(ge=-1)] | None
    reload_dataloaders_every_n_epochs: Count
    profiler: Literal["simple", "advanced", "pytorch", "xla"] | dict[str, Any] | None  # dict: a _target_ node
    default_root_dir: str | None


@overlay("lightning.pytorch.callbacks.ModelCheckpoint")
class ModelCheckpointSettings:
    """``save_top_k=-2`` or ``every_n_train_steps=-1`` fail at the first save, mid-run."""

    save_top_k: Annotated[int, Range(ge=-1)]
    every_n_train_steps: Count | None
    every_n_epochs: Count | None
    mode: Literal["min", "max"]


@overlay("lightning.pytorch.callbacks.ModelSummary")
class ModelSummarySettings:
    """-1 is every depth, 0 none; -2 fails when the summary is drawn, after the run has started."""

    max_depth: Annotated[int, Range(ge=-1)]


@overlay("lightning.pytorch.callbacks.EarlyStopping")
class EarlyStoppingSettings:
    """A negative patience stops at the first check; NaN thresholds never compare."""

    patience: Count
    min_delta: FiniteFloat
    mode: Literal["min", "max"]
    stopping_threshold: FiniteFloat | None
    divergence_threshold: FiniteFloat | None


@overlay("lightning.pytorch.strategies.DeepSpeedStrategy")
class DeepSpeedSettings:
    """ZeRO stages and buffer sizes: DeepSpeed reads them only once the engine starts."""

    stage: Literal[0, 1, 2, 3]
    params_buffer_count: PositiveInt
    params_buffer_size: PositiveInt
    max_in_cpu: PositiveInt
    optimizer_buffer_count: PositiveInt
    block_size: PositiveInt
    queue_depth: PositiveInt
    thread_count: PositiveInt
    sub_group_size: PositiveInt
    allgather_bucket_size: PositiveInt
    reduce_bucket_size: PositiveInt
    logging_batch_size_per_gpu: PositiveInt | Literal["auto"]
    logging_level: Count
    loss_scale: NonNegativeFloat  # 0: dynamic loss scaling
    initial_scale_power: Count
    loss_scale_window: PositiveInt
    hysteresis: PositiveInt
    min_loss_scale: PositiveFloat
