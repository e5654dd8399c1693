"""What ``python train.py`` does with a composed Hydra config, top to bottom: check the config,
build the groups, check them against each other and the checkpoint, read the data, fit, summarize.

Every check lives in ``lightning_ltd.checks``; this file only orders them. ``train(cfg)`` is the
same run for Python (tests, notebooks, Hydra's Compose API) and changes no process-wide state;
the command line (``main``) adds the console's one-line errors and warnings for its own process.
"""

from __future__ import annotations

import sys
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import lightning as L
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.callbacks import LearningRateMonitor, ModelSummary, ProgressBar, ThroughputMonitor
from omegaconf import DictConfig, OmegaConf, open_dict

from lightning_ltd.callbacks import RunSummary, TrainingProgress, ValidateFirst
from lightning_ltd.callbacks.tokenizer import TokenizerRecord
from lightning_ltd.checks.config import cadence_warnings, setting_problems
from lightning_ltd.checks.fingerprint import RunFingerprint, run_fingerprint
from lightning_ltd.checks.groups import build_groups, instantiate_group, out_of_memory
from lightning_ltd.checks.lock import hold_output_dir
from lightning_ltd.checks.objects import (
    batch_problems,
    class_problems,
    data_content,
    declared_objective_problems,
    endless_run_warnings,
    lr_schedule_problems,
    object_problems,
)
from lightning_ltd.console import boundary, command_console, messages_held_until_checked
from lightning_ltd.errors import EXIT_BAD_INPUT, EXIT_OS_ERROR, ConfigError, InvalidFieldsError, SettingWarning, stop_if

__all__ = ["EXIT_BAD_INPUT", "EXIT_OS_ERROR", "ConfigError", "build", "main", "run", "run_command", "train"]


@hydra.main(config_path="pkg://lightning_ltd.conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """``lightning-ltd-train [group=option] [key=value ...]``: ``python train.py`` for an installed
    package (the configs travel inside it; ``--config-dir DIR`` adds a folder of one's own)."""
    sys.exit(run_hydra_job(cfg))


def run_hydra_job(cfg: DictConfig) -> int:
    """What a ``@hydra.main`` function runs (``python train.py``, ``lightning-ltd-train``): the
    console of a command (one-line warnings, Lightning's notes into Hydra's ``train.log``)."""
    command_console()
    return run_command(cfg)


@boundary
def run_command(cfg: DictConfig) -> None:
    """``python train.py`` without the process: the exit code, a failure's one line on stderr
    (``console.boundary``)."""
    train(cfg)


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and run it; returns the run summary.

    ``cfg`` may come from ``python train.py`` / ``lightning-ltd-train`` or from Hydra's Compose
    API (``initialize_config_module("lightning_ltd.conf")`` + ``compose("train", overrides)``);
    a composed config has no Hydra run folder, so ``paths.output_dir`` then defaults to
    ``outputs/<date>/<time>`` under the working directory.
    """
    ensure_output_dir(cfg)
    lock = hold_output_dir(cfg)
    try:
        return run(cfg, *build(cfg))
    finally:
        if lock is not None:
            lock.release()


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Instantiate everything and read the data, checking every setting, path and checkpoint
    before any work starts (no validation pass, no file written): a bad one raises ``ConfigError``.
    Warnings and library notes raised meanwhile show only once every check has passed."""
    with messages_held_until_checked():
        return checked_build(cfg)


def checked_build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    problems = setting_problems(cfg)  # 1. the config alone, reported with every group's own problems
    if cfg.get("seed") is not None and not problems:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    built = build_groups(cfg, problems)  # 2. each group against its constructor's declared ranges
    module, datamodule = built.module, built.datamodule
    if problems and (datamodule is None or module is None):
        problems[:0] = declared_objective_problems(cfg)
    stop_if(problems)
    stop_if(batch_problems(datamodule, module))
    fingerprint = run_fingerprint(cfg, data_content(datamodule))
    stop_if(object_problems(cfg, built, fingerprint))  # 3. the objects against each other and the checkpoint
    read_data(datamodule)  # 4. the data itself, so a bad path fails before training
    stop_if(class_problems(datamodule, module))
    callbacks = [
        *built.callbacks,
        RunFingerprint(fingerprint),
        TokenizerRecord(getattr(datamodule, "tokenizer_source", None)),
    ]
    for switch, kind in (("trainer.enable_progress_bar", ProgressBar), ("trainer.enable_model_summary", ModelSummary)):
        if OmegaConf.select(cfg, switch, default=True) is False:
            callbacks = [c for c in callbacks if not isinstance(c, kind)]  # the switch alone turns ours off
    if built.logger is False:  # no logger: callbacks whose only output is the logger's would fail at setup
        callbacks = [c for c in callbacks if not isinstance(c, LOGGER_ONLY)]
    trainer = instantiate_group(cfg, "trainer", callbacks=callbacks, logger=built.logger)
    stop_if(lr_schedule_problems(built.lr_schedule, built.scheduler, module, datamodule, trainer, built.curriculum))
    for message in [*cadence_warnings(cfg), *endless_run_warnings(trainer, built.lr_schedule)]:
        warnings.warn(message, SettingWarning, stacklevel=2)
    return module, datamodule, trainer


LOGGER_ONLY = (LearningRateMonitor, ThroughputMonitor)
"""Callbacks that only write to the logger: Lightning refuses ``LearningRateMonitor`` without one."""


def read_data(datamodule: L.LightningDataModule) -> None:
    """``setup("fit")`` with its problems named under ``data``."""
    try:
        datamodule.setup("fit")
    except InvalidFieldsError as err:
        raise ConfigError(err.prefixed("data")) from err
    except (RuntimeError, MemoryError) as err:  # the digits upscaled to data.image_size=9000 are 582 GB
        if (too_large := out_of_memory("data", err)) is None:
            raise
        raise too_large from err


NOTHING_TRAINED = (
    "the run ended before its first optimizer step, nothing was trained: see trainer.max_epochs, "
    "trainer.limit_train_batches, trainer.max_time and whether the training data fills one batch"
)


def run(
    cfg: DictConfig, module: L.LightningModule, datamodule: L.LightningDataModule, trainer: L.Trainer
) -> dict[str, Any]:
    """Optionally validate first (the summary's starting point: inside ``fit``, so every strategy
    wraps the model once), fit; return the summary. A fit that took no step is an error."""
    resuming = cfg.get("ckpt_path") is not None
    if cfg.get("validate_before_fit", True) and not resuming:
        trainer.callbacks.append(ValidateFirst())
    progress = TrainingProgress()
    trainer.callbacks.append(progress)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if progress.steps(trainer) == 0:
        raise ConfigError(NOTHING_TRAINED)
    summary = next((c for c in trainer.callbacks if isinstance(c, RunSummary)), None)
    return dict(summary.summary) if summary is not None else {}


def ensure_output_dir(cfg: DictConfig) -> None:
    """Give a Compose-API config (where ``${hydra:runtime.output_dir}`` cannot resolve) a folder."""
    if HydraConfig.initialized() or OmegaConf.select(cfg, "paths", default=None) is None:
        return
    try:
        OmegaConf.select(cfg, "paths.output_dir", throw_on_resolution_failure=True)
    except Exception:  # "HydraConfig was not set" from the hydra: resolver
        folder = Path("outputs") / datetime.now().strftime("%Y-%m-%d/%H-%M-%S")
        with open_dict(cfg):
            cfg.paths.output_dir = str(folder.absolute())
