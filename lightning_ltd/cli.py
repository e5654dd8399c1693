"""What ``python train.py`` does with a composed Hydra config (importable, so tests call it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hydra
import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf

from lightning_ltd.callbacks import RandomLTDScheduler, RunSummary
from lightning_ltd.checkpoint import unwritable_folder
from lightning_ltd.errors import InvalidFieldsError
from lightning_ltd.modules import RandomLTDModule
from lightning_ltd.resume import data_source, resume_problems


class ConfigError(ValueError):
    """A bad setting, reported as one line that names its full key (``ltd.min_keep=...``)."""


def instantiate_group(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate(cfg[key])`` whose field errors name ``key.field``."""
    try:
        return hydra.utils.instantiate(cfg[key], **kwargs)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} must be set: add {err.full_key}=...") from err
    except Exception as err:  # Hydra wraps constructor errors in InstantiationException
        cause = err
        while cause.__cause__ is not None and not isinstance(cause, InvalidFieldsError):
            cause = cause.__cause__
        if isinstance(cause, InvalidFieldsError):
            raise ConfigError(cause.prefixed(key)) from err
        if isinstance(cause, (ValueError, TypeError, MisconfigurationException)) and cause is not err:
            first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
            raise ConfigError(f"{key}: {first_line}") from err
        raise


def cross_check(cfg: DictConfig) -> list[str]:
    """Problems between the data and the model config (each names both keys)."""
    problems = []
    seq_len, model_len = cfg.data.get("block_size"), cfg.model.get("block_size")
    if isinstance(seq_len, int) and isinstance(model_len, int) and seq_len > model_len:
        problems.append(f"data.block_size={seq_len} exceeds model.block_size={model_len}")
    min_lr, peak = (cfg.get("lr") or {}).get("min_lr"), cfg.model.get("lr")
    if isinstance(min_lr, (int, float)) and isinstance(peak, (int, float)) and min_lr > peak:
        problems.append(f"lr.min_lr={min_lr} must be <= model.lr={peak} (the decay would rise)")
    return problems


def keep_problems(scheduler: RandomLTDScheduler, module: RandomLTDModule, datamodule: Any = None) -> list[str]:
    """Kept lengths longer than the sequences are a mistake, not a no-op; dropping needs layers."""
    if not scheduler.enabled:
        return []
    if not module.ltd_layers():
        return ["model.ltd_layers: the model has no dropping layers (ltd_layers=[] or n_layer < 3); use ltd=off"]
    problems = [
        f"ltd.{key}={keep} exceeds the sequence length {module.max_seq_len} of the model"
        for key, keep in (("min_keep", scheduler.min_keep), ("max_keep", scheduler.max_keep))
        if keep is not None and keep > module.max_seq_len
    ]
    data_len = getattr(datamodule, "block_size", None)
    if not problems and isinstance(data_len, int) and scheduler.max_keep is None and scheduler.min_keep > data_len:
        problems.append(f"ltd.min_keep={scheduler.min_keep} exceeds data.block_size={data_len}")
    return problems


def run_setting_problems(cfg: DictConfig) -> list[str]:
    """The global seed and the loop settings Lightning would accept and then misuse (or reject mid-run)."""
    trainer, problems = cfg.get("trainer") or {}, []
    steps = trainer.get("max_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < -1):
        problems.append(f"trainer.max_steps={steps!r} must be an integer >= -1 (-1: no limit)")
    interval = trainer.get("val_check_interval")
    if interval is not None and (isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0):
        problems.append(f"trainer.val_check_interval={interval!r} must be > 0 (steps, or a fraction of an epoch)")
    every = trainer.get("log_every_n_steps")
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 0):
        problems.append(f"trainer.log_every_n_steps={every!r} must be an integer >= 0")
    seed = cfg.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        problems.append(f"seed={seed!r} must be an integer")
    return problems


def vocabulary_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """A tokenizer with more ids than the model's embedding would index out of range."""
    data_vocab = getattr(datamodule, "vocab_size", None)
    model_vocab = getattr(getattr(module, "hparams", {}), "vocab_size", None)
    if data_vocab is None or model_vocab is None or data_vocab <= model_vocab:
        return []
    source = getattr(datamodule, "path", None)
    where = f"data.path={source!r}: " if source else ""
    return [f"{where}the data's tokenizer has {data_vocab} tokens, more than model.vocab_size={model_vocab}"]


def class_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """Labels the classifier head cannot produce would fail mid-run; say so now."""
    classes = getattr(datamodule, "classes", None)
    model_classes = getattr(getattr(module, "hparams", {}), "num_classes", None)
    if not classes or model_classes is None or len(classes) <= model_classes:
        return []
    return [f"the data has {len(classes)} classes, more than model.num_classes={model_classes}"]


def required_problems(cfg: DictConfig) -> list[str]:
    """Keys the chosen experiment needs and the user has not set (``required_keys``)."""
    return [
        f"{key} must be set (experiment needs it): add {key}=..."
        for key in cfg.get("required_keys") or []
        if OmegaConf.select(cfg, key, default=None, throw_on_missing=False) in (None, "???")
    ]


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Instantiate everything, checking settings before any work starts."""
    problems = required_problems(cfg) + run_setting_problems(cfg) + cross_check(cfg)
    dirpath = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    reason = unwritable_folder(dirpath) if dirpath else None
    if reason:
        problems.append(f"callbacks.model_checkpoint.dirpath={dirpath!r}: cannot write checkpoints ({reason})")
    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path is not None and not Path(ckpt_path).is_file():
        problems.append(f"ckpt_path={ckpt_path!r}: no such checkpoint file")
    if problems:
        raise ConfigError("; ".join(problems))
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    problems = []

    def attempt(key: str, **kwargs: Any) -> Any:
        """Instantiate a group, collecting its error so that one line reports every bad group."""
        try:
            return instantiate_group(cfg, key, **kwargs)
        except ConfigError as err:
            problems.append(str(err))
            return None

    lr_schedule = attempt("lr") if cfg.get("lr") else None
    scheduler = attempt("ltd", lr=lr_schedule)
    datamodule = attempt("data")
    module = attempt("model")
    if problems:
        raise ConfigError("; ".join(problems))
    if hasattr(datamodule, "use_objective"):  # data that serves several objectives serves the module's
        datamodule.use_objective(getattr(module, "objective", "lm"))
    problems = keep_problems(scheduler, module, datamodule) + vocabulary_problems(datamodule, module)
    if ckpt_path is not None:
        max_steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
        problems += resume_problems(ckpt_path, module, data_source(datamodule), max_steps)
    if problems:
        raise ConfigError("; ".join(problems))
    callbacks: list[Callback] = [scheduler]
    for name in cfg.get("callbacks") or {}:
        callbacks.append(instantiate_group(cfg.callbacks, name))
    logger = instantiate_group(cfg, "logger") if cfg.get("logger") else False
    trainer = instantiate_group(cfg, "trainer", callbacks=callbacks, logger=logger)
    try:
        datamodule.setup("fit")  # read the data now, so a bad path fails before training
    except InvalidFieldsError as err:
        raise ConfigError(err.prefixed("data")) from err
    problems = class_problems(datamodule, module)
    if problems:
        raise ConfigError("; ".join(problems))
    return module, datamodule, trainer


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and run it; returns the run summary."""
    return run(cfg, *build(cfg))


def run(
    cfg: DictConfig, module: L.LightningModule, datamodule: L.LightningDataModule, trainer: L.Trainer
) -> dict[str, Any]:
    """Optionally validate first (the summary's starting point), fit; return the summary."""
    resuming = cfg.get("ckpt_path") is not None
    if cfg.get("validate_before_fit", True) and not resuming:
        trainer.validate(module, datamodule=datamodule, verbose=False)
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    summary = next((c for c in trainer.callbacks if isinstance(c, RunSummary)), None)
    return dict(summary.summary) if summary is not None else {}
