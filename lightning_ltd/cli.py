"""What ``python train.py`` does with a composed Hydra config (importable, so tests call it)."""

from __future__ import annotations

import functools
import os
import re
import sys
import typing
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.accelerators import AcceleratorRegistry
from lightning.pytorch.callbacks import Callback, LearningRateMonitor, ModelSummary, ProgressBar, ThroughputMonitor
from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf, open_dict

from lightning_ltd.callbacks import (
    Curriculum,
    NonFiniteLossError,
    RandomLTDScheduler,
    RunSummary,
    TrainingProgress,
    ValidateFirst,
)
from lightning_ltd.callbacks.checkpoint import idle_checkpoint_problems
from lightning_ltd.callbacks.tokenizer import TokenizerRecord
from lightning_ltd.checkpoint import unwritable_folder
from lightning_ltd.checks import machine
from lightning_ltd.checks.fingerprint import RunFingerprint, content_fingerprint, data_source, run_fingerprint
from lightning_ltd.checks.groups import import_problem, kind_problem
from lightning_ltd.checks.lock import (
    FolderInUseError,
    RunLock,
    earlier_run_problem,
    hold,
    is_launching_rank,
    remove_partial_saves,
)
from lightning_ltd.checks.monitoring import monitored_metric_problems, unvalidated_metric_problems
from lightning_ltd.checks.resume import resume_problems, strategy_kind
from lightning_ltd.checks.schema import (
    constructor_hints,
    integral_overrides,
    interpolation_source,
    resolved_class,
    type_problems,
    value_problems,
)
from lightning_ltd.checks.settings import RunSettings
from lightning_ltd.console import log_records_held, log_through_root, quiet_console
from lightning_ltd.errors import DataError, InvalidFieldsError, SettingWarning, first_line, is_int, is_number
from lightning_ltd.ltd.schedule import layer_tokens_per_step, mslg_keep
from lightning_ltd.modules import RandomLTDModule
from lightning_ltd.modules.base import embedded_vocab_size, sequence_length


class ConfigError(ValueError):
    """A bad setting, reported as one line that names its full key (``ltd.min_keep=...``)."""


def with_sources(message: str, node: Any, key: str) -> str:
    """``lr.total_steps=-1 (from trainer.max_steps) must be ...``: a value another key set names
    that key, the one the user wrote."""
    parts = []
    for problem in message.split("; "):
        name = problem.removeprefix(f"{key}.").split("=", 1)[0]
        source = interpolation_source(node, name) if isinstance(node, DictConfig) and name in node else ""
        parts.append(_insert(problem, source) if source else problem)
    return "; ".join(parts)


def _insert(problem: str, source: str) -> str:
    """Put `` (from X)`` after the ``key=value`` at the start of ``problem``."""
    head, _, rest = problem.partition(" must ")
    return f"{head}{source} must {rest}" if rest else f"{problem}{source}"


def instantiate_group(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of the (dotted) ``key``, whose field errors name ``key.field``.

    The constructor's own checks speak first (their messages are the most specific); a value of
    a type its annotations exclude is an error too, even where the constructor would accept it
    silently or fail with a message that names no key (``lightning_ltd.checks.schema``)."""
    node = OmegaConf.select(cfg, key)
    if isinstance(node, DictConfig) and "_target_" in node:
        declared = integral_overrides(node, constructor_hints(str(node._target_)))
        kwargs = {**declared, **kwargs}  # ltd.ramp_steps=1e5 reaches the constructor as 100000
    try:
        instance = hydra.utils.instantiate(node, **kwargs)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} must be set: add {err.full_key}=...") from err
    except Exception as err:  # Hydra wraps constructor errors in InstantiationException
        cause = err
        while cause.__cause__ is not None and not isinstance(cause, InvalidFieldsError):
            cause = cause.__cause__
        if isinstance(cause, InvalidFieldsError):
            raise ConfigError(with_sources(cause.prefixed(key), node, key)) from err
        stop_if(type_problems(node, key))
        if (unimportable := import_problem(key, err, cfg)) is not None:
            raise ConfigError(unimportable) from err
        if isinstance(cause, (ValueError, TypeError, MisconfigurationException)) and cause is not err:
            raise ConfigError(f"{key}: {first_line(cause, 1000)}") from err
        if (too_large := out_of_memory(key, cause)) is not None:
            raise too_large from err
        raise
    stop_if(type_problems(node, key))
    if (wrong_kind := kind_problem(key, instance)) is not None:
        raise ConfigError(wrong_kind)
    return instance


def out_of_memory(key: str, err: BaseException) -> ConfigError | None:
    """A failed allocation while building ``key`` as one line with the size it asked for; None:
    ``err`` is not one. Sizes beyond the machine (``data.image_size=100000`` makes the ViT's
    position table) fail in torch's allocator, whose message is a C++ assertion."""
    text = str(err)
    if not (isinstance(err, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in text):
        return None
    found = re.search(r"allocate (\d+) bytes", text)
    requested = f"{int(found.group(1)) / 2**30:.1f} GiB at once" if found else "more than is free"
    return ConfigError(f"{key}: does not fit in memory ({requested}): check its sizes")


def cross_check(cfg: DictConfig) -> list[str]:
    """Problems between the data and the model config (each names both keys)."""
    problems = []
    seq_len, model_len = cfg.data.get("block_size"), cfg.model.get("block_size")
    if isinstance(seq_len, int) and isinstance(model_len, int) and seq_len > model_len:
        problems.append(f"data.block_size={seq_len} exceeds model.block_size={model_len}")
    min_lr, peak = (cfg.get("lr") or {}).get("min_lr"), cfg.model.get("lr")
    if is_number(min_lr) and is_number(peak) and 0 < peak < min_lr:  # a peak <= 0 is the model's own error
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
    reason = None if problems else never_drops(scheduler, sequence_length(module, datamodule))
    return [f"{reason}: nothing is ever dropped (use ltd=off for that)"] if reason else problems


def lr_schedule_problems(
    lr_schedule: Any,
    scheduler: RandomLTDScheduler,
    module: Any,
    datamodule: Any,
    trainer: L.Trainer,
    curriculum: Curriculum | None = None,
) -> list[str]:
    """A schedule in layer-tokens that no step shape of this run could make sense of (a warmup in
    steps longer than a total in layer-tokens), found now rather than at the first batch. The
    fewest layer-tokens a step can take are at the fewest kept tokens of the shortest row (a
    curriculum's ``min_len``)."""
    rows = getattr(datamodule, "batch_size", None)
    if not hasattr(lr_schedule, "certain_problems") or not isinstance(rows, int) or isinstance(rows, bool):
        return []
    seq_len = sequence_length(module, datamodule)
    global_batch = rows * trainer.world_size * trainer.accumulate_grad_batches
    n_dropping = len(module.ltd_layers()) if scheduler.enabled else 0
    shortest = min(curriculum.min_len, seq_len) if curriculum is not None and curriculum.seqlen else seq_len
    fewest = min(scheduler.min_keep, shortest) if scheduler.enabled else None
    bounds = (
        layer_tokens_per_step(global_batch, shortest, fewest, module.num_layers, n_dropping),
        layer_tokens_per_step(global_batch, seq_len, None, module.num_layers, n_dropping),
    )
    return lr_schedule.certain_problems(bounds, module.num_layers)


def curriculum_problems(curriculum: Curriculum | None, module: Any, datamodule: Any) -> list[str]:
    """A truncation curriculum on batches that cannot be cut (images), or longer than the run's
    sequences; a rarity curriculum on data without rarity scores."""
    if curriculum is None:
        return []
    if curriculum.rarity:
        if not hasattr(datamodule, "rarity_problem"):
            return [
                f"curriculum.rarity: {type(datamodule).__name__} has no rarity scores (use data=tokens, scored by "
                "python -m lightning_ltd.data.rarity)"
            ]
        if (missing := datamodule.rarity_problem()) is not None:
            return [missing]
    if not curriculum.seqlen:
        return []
    if type(module).truncate is RandomLTDModule.truncate:
        return [f"curriculum.seqlen: {type(module).__name__}'s batches cannot be truncated (use curriculum=off)"]
    sequence = sequence_length(module, datamodule)
    try:
        curriculum.resolve(sequence)
    except InvalidFieldsError as err:
        return [err.prefixed("curriculum")]
    return []


def never_drops(scheduler: RandomLTDScheduler, sequence: int) -> str | None:
    """Why no step of the schedule keeps fewer than ``sequence`` tokens (None: some step does).
    The MSLG length only grows, so its first step decides."""
    if scheduler.granularity >= sequence:
        return f"ltd.granularity={scheduler.granularity} is not below the sequence length {sequence}"
    top = min(scheduler.max_keep or sequence, sequence)
    first = mslg_keep(0, min(scheduler.min_keep, top), top, scheduler.ramp_steps, scheduler.granularity)
    if first < sequence:
        return None
    if scheduler.ramp_steps == 0:
        return f"ltd.ramp_steps=0 starts the schedule at its end, the whole sequence of {sequence}"
    return f"ltd.min_keep={scheduler.min_keep} is not below the sequence length {sequence}"


def run_setting_problems(cfg: DictConfig) -> list[str]:
    """The run's own keys and the trainer's, against their schema (``lightning_ltd.checks.settings``),
    and an accelerator this machine lacks: all judged before anything is built."""
    trainer = cfg.get("trainer")
    problems = value_problems(cfg, typing.get_type_hints(RunSettings, include_extras=True))
    if isinstance(trainer, DictConfig) and "_target_" in trainer:
        problems += type_problems(trainer, "trainer")
    trainer = trainer or {}
    problems += accelerator_problems(trainer.get("accelerator")) + gpu_only_problems(cfg)
    problems += worker_problems(cfg)
    problems += [
        f"trainer.{key} is set by {owner}, not in trainer" for key, owner in GROUP_OWNED.items() if key in trainer
    ]
    return problems or run_length_problems(cfg)  # the lengths are compared once each is of its type


GROUP_OWNED = {
    "callbacks": "the callbacks group (+callbacks.NAME._target_=..., callbacks.NAME=null to drop one)",
    "logger": "the logger group (logger=csv, or logger=null for none)",
}
"""``Trainer`` arguments ``train`` passes itself: one written into ``trainer`` would be replaced
without a word (Hydra's ``instantiate`` lets the call's arguments win)."""


def run_length_problems(cfg: DictConfig) -> list[str]:
    """Lengths that contradict each other, or a time limit of zero: Lightning lets the maximum
    win and exits 0 having trained less than the minimum, or nothing."""
    select = functools.partial(OmegaConf.select, cfg, default=None)
    problems = []
    for unit in ("steps", "epochs"):
        low, high = select(f"trainer.min_{unit}"), select(f"trainer.max_{unit}")
        if is_int(low) and is_int(high) and high >= 0 and low > high:
            problems.append(f"trainer.min_{unit}={low} is more than trainer.max_{unit}={high}: the maximum stops first")
    interval, per_epoch = select("trainer.val_check_interval"), select("trainer.check_val_every_n_epoch")
    if isinstance(interval, float) and not interval.is_integer() and per_epoch is None:
        problems.append(
            f"trainer.val_check_interval={interval} (a fraction of an epoch) needs trainer.check_val_every_n_epoch=1: "
            "with null (this project's default) validation counts steps across epochs"
        )
    total, steps, floor = select("lr.total_steps"), select("trainer.max_steps"), select("lr.min_lr")
    if is_int(total) and is_int(steps) and 0 < total < steps and floor == 0 and select("lr.decay") != "constant":
        problems.append(
            f"lr.total_steps={total} decays the LR to lr.min_lr=0 before trainer.max_steps={steps}: the last "
            f"{steps - total} steps would train nothing (decay over the whole run, or set lr.min_lr above 0)"
        )
    max_time = select("trainer.max_time")
    if max_time is not None and duration_seconds(max_time) == 0:
        problems.append(f"trainer.max_time={_plain_value(max_time)!r} stops the run before its first step")
    return problems


def duration_seconds(value: Any) -> float | None:
    """``DD:HH:MM:SS`` or a ``{days, hours, minutes, seconds}`` mapping in seconds (None: neither)."""
    if isinstance(value, str) and value.count(":") == 3 and value.replace(":", "").isdigit():
        days, hours, minutes, seconds = map(int, value.split(":"))
        return float(((days * 24 + hours) * 60 + minutes) * 60 + seconds)
    if isinstance(value, Mapping):
        return float(sum(DURATION_UNITS.get(key, 0) * amount for key, amount in value.items() if is_number(amount)))
    return None


DURATION_UNITS = {"weeks": 604800, "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
DURATION_UNITS |= {"milliseconds": 1e-3, "microseconds": 1e-6}
"""Seconds per unit of ``datetime.timedelta``'s arguments."""


def _plain_value(value: Any) -> Any:
    return OmegaConf.to_container(value) if isinstance(value, DictConfig) else value


def gpu_only_problems(cfg: DictConfig) -> list[str]:
    """Settings that only a GPU honours, on a run that will be on the CPU: float16 mixed precision
    (Lightning would run bf16-mixed instead), CUDA-graph compile modes (nothing to capture), and
    more devices (processes) than the CPU has cores."""
    trainer = cfg.get("trainer") or {}
    accelerator = trainer.get("accelerator", "auto")
    if not (accelerator == "cpu" or (accelerator == "auto" and not torch.cuda.is_available())):
        return []
    problems = []
    precision = str(trainer.get("precision", "32-true"))
    if precision in FLOAT16_PRECISIONS:  # mixed: Lightning would run bf16 instead; true: fp16 overflows on CPU
        problems.append(f"trainer.precision={precision!r} needs a GPU (on CPU: bf16-mixed, bf16-true or 32-true)")
    model = cfg.get("model") or {}
    mode = model.get("compile_mode") if model.get("compile") is True else None
    if mode in CUDA_GRAPH_MODES:
        problems.append(
            f"model.compile_mode={mode!r} captures CUDA graphs and needs a GPU (on CPU: default or max-autotune)"
        )
    devices = trainer.get("devices")
    if is_int(devices) and devices > machine.cores():  # one process per device: 1000 of them exhaust the machine
        problems.append(f"trainer.devices={devices} processes on the CPU, more than its {machine.cores()} cores")
    return problems


def worker_problems(cfg: DictConfig) -> list[str]:
    """Loader workers that cannot fit in this machine's free memory: each is a fork of this
    process on every local rank, and PyTorch only warns before starting them all."""
    workers = OmegaConf.select(cfg, "data.num_workers", default=None)
    devices = OmegaConf.select(cfg, "trainer.devices", default=None)
    free, each = machine.available_memory(), machine.process_memory()
    if not is_int(workers) or workers <= 0 or free is None or each is None:
        return []
    processes = workers * (devices if is_int(devices) and devices > 0 else 1)
    if processes * each <= free:
        return []
    return [
        f"data.num_workers={workers}: {processes} loader processes of about {machine.gib(each)} each "
        f"need {machine.gib(processes * each)}, more than the {machine.gib(free)} free on this machine"
    ]


FLOAT16_PRECISIONS = ("16-mixed", "16", "16-true", "half")
"""float16 precisions: without a GPU's loss scaling and fp16 kernels they stop at a non-finite loss."""

CUDA_GRAPH_MODES = ("reduce-overhead",)
"""Inductor drops CUDA graphs on a CPU without a word: the mode set would not be the mode run
(``max-autotune`` still autotunes CPU kernels, so it stays allowed)."""


def validation_switch(cfg: DictConfig) -> str | None:
    """The setting that switches validation off (None: validation runs)."""
    limit = OmegaConf.select(cfg, "trainer.limit_val_batches", default=None)
    return f"trainer.limit_val_batches={limit}" if is_number(limit) and limit == 0 else None


def accelerator_problems(name: Any) -> list[str]:
    """An accelerator this machine lacks fails deep inside Lightning, without naming the key."""
    if name is None or not isinstance(name, str) or name == "auto":
        return []
    known = sorted(AcceleratorRegistry.available_accelerators())
    if name == "gpu":
        usable = any(AcceleratorRegistry[n]["accelerator"].is_available() for n in ("cuda", "mps") if n in known)
    elif name in known:
        usable = AcceleratorRegistry[name]["accelerator"].is_available()
    else:
        return [f"trainer.accelerator={name!r} must be one of auto, gpu, {', '.join(known)}"]
    return [] if usable else [f"trainer.accelerator={name!r}: no such device on this machine (trainer=cpu runs on CPU)"]


def folder_problems(cfg: DictConfig) -> list[str]:
    """Folders the run will write into must be writable now, not after the first hour of training."""
    problems = []
    for key in PATH_KEYS:
        try:
            path = OmegaConf.select(cfg, key, default=None)
        except Exception:  # a missing or unresolvable value: required_problems or Hydra name it
            continue
        if isinstance(path, str) and not path.strip():  # '' is the current folder: never what was meant
            problems.append(f"{key}={path!r} is an empty path (null for the default)")
    for key in ("trainer.default_root_dir", "callbacks.model_checkpoint.dirpath", "logger.save_dir"):
        folder = OmegaConf.select(cfg, key, default=None)
        reason = unwritable_folder(folder) if isinstance(folder, str) and folder.strip() else None
        if reason:
            problems.append(f"{key}={folder!r}: cannot write there ({reason})")
    for folder_key, key in INSIDE:
        folder, part = (OmegaConf.select(cfg, k, default=None) for k in (folder_key, key))
        if isinstance(folder, str) and isinstance(part, str) and not _stays_inside(folder, part):
            problems.append(f"{key}={part!r} leaves {folder_key}={folder!r}: name a path inside it")
    return problems


PATH_KEYS = (
    "ckpt_path",
    "data.path",
    "data.tokenizer",
    "model.pretrained",
    "trainer.default_root_dir",
    "callbacks.model_checkpoint.dirpath",
    "logger.save_dir",
)
"""Keys that name a file or folder: an empty string would read or write the current folder."""

INSIDE = (
    ("logger.save_dir", "logger.name"),
    ("logger.save_dir", "logger.version"),
    ("callbacks.model_checkpoint.dirpath", "callbacks.model_checkpoint.filename"),
)
"""Names that Lightning joins to a folder: ``../..`` or an absolute path would write elsewhere."""


def _stays_inside(folder: str, relative: str) -> bool:
    root = Path(folder).expanduser().absolute()
    return Path(os.path.normpath(root / relative)).is_relative_to(root) and Path(relative) != Path(".")


def vocabulary_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """A tokenizer with more ids than the model's embedding would index out of range."""
    data_vocab = getattr(datamodule, "vocab_size", None)
    model_vocab = embedded_vocab_size(module)
    if data_vocab is None or model_vocab is None or data_vocab <= model_vocab:
        return []
    source = getattr(datamodule, "path", None)
    where = f"data.path={source!r}: " if source else ""
    padded = -(-data_vocab // 64) * 64  # LitGPT's padding: whole tiles for the embedding and the LM head
    return [
        f"{where}the data's tokenizer has {data_vocab} tokens, more than model.vocab_size={model_vocab} "
        f"(set model.vocab_size={padded})"
    ]


def length_problems(datamodule: L.LightningDataModule, module: L.LightningModule) -> list[str]:
    """Sequences longer than the model's positions (a pretrained GPT-2's ``n_positions``) would
    fail at the first batch, after the run folder is written."""
    data_len, model_len = getattr(datamodule, "block_size", None), getattr(module, "max_seq_len", None)
    if not is_int(data_len) or not is_int(model_len) or data_len <= model_len:
        return []
    hparams = getattr(module, "hparams", {})
    source = hparams.get("pretrained") if isinstance(hparams, Mapping) else None
    whose = f"model.pretrained={source!r}" if source else "the model"
    return [f"data.block_size={data_len} is longer than the {model_len} positions of {whose}"]


SERVED_BY = {
    "lm": "data=text or data=tokens",
    "mlm": "data=mlm or data=tokens",
    "images": "data=digits or data=imagefolder",
}


def objective_problems(datamodule: Any, module: Any) -> list[str]:
    """The batches the data module (or its class) serves against those the module (or its
    class) trains on; ``auto``: a data module that serves the module's."""
    served, taken = getattr(datamodule, "produces", None), getattr(module, "objective", None)
    if not isinstance(served, str) or served == "auto" or not isinstance(taken, str) or served == taken:
        return []
    return [
        f"{_class_name(module)} trains on {taken} batches but {_class_name(datamodule)} serves {served} "
        f"batches: use {SERVED_BY.get(taken, 'a data module that serves them')}"
    ]


def declared_objective_problems(cfg: DictConfig) -> list[str]:
    """``objective_problems`` of the classes the model and data groups name: when building one
    of them failed, the mismatch is still the first thing to fix (a masked-LM data module's
    tokenizer check says nothing about a causal model)."""
    classes = [resolved_class(str(OmegaConf.select(cfg, f"{key}._target_", default=""))) for key in ("data", "model")]
    return objective_problems(*classes) if all(classes) else []


def _class_name(instance_or_class: Any) -> str:
    return (instance_or_class if isinstance(instance_or_class, type) else type(instance_or_class)).__name__


def batch_problems(datamodule: Any, module: Any) -> list[str]:
    """The data module's batches (``produces``) against what the module trains on
    (``objective``), and an image's channels and size against the ViT's: a mismatch would fail
    at the first batch, after files are written."""
    served = getattr(datamodule, "produces", None)
    problems = objective_problems(datamodule, module)
    if problems or served is None:
        return problems
    hparams = getattr(module, "hparams", {})
    for data_key, model_key in (("channels", "in_channels"), ("image_size", "image_size")):
        ours, theirs = getattr(datamodule, data_key, None), hparams.get(model_key) if served == "images" else None
        if ours is not None and theirs is not None and ours != theirs:
            problems.append(f"data.{data_key}={ours} does not match model.{model_key}={theirs}")
    return problems


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


def stop_if(problems: list[str]) -> None:
    """Every problem found so far, on one line."""
    if problems:
        raise ConfigError("; ".join(problems))


def setting_problems(cfg: DictConfig) -> list[str]:
    """What can be judged from the config alone (no object built, no file read but ``ckpt_path``'s)."""
    problems = required_problems(cfg) + run_setting_problems(cfg) + cross_check(cfg) + folder_problems(cfg)
    ckpt_path = cfg.get("ckpt_path")
    named = isinstance(ckpt_path, str) and ckpt_path.strip()  # other types: the schema; '': PATH_KEYS
    if named and not Path(ckpt_path).expanduser().exists():
        problems.append(f"ckpt_path={ckpt_path!r}: no such checkpoint file or folder")
    return problems


HELD_LOGGERS = ("", "transformers")  # the root (ours, Lightning's) and transformers' (it does not propagate)


@contextmanager
def warnings_held_until_checked() -> Iterator[None]:
    """Warnings raised while checking the settings appear only if the checks pass: a bad input's
    one error line stands alone on stderr."""
    with warnings.catch_warnings(record=True) as held:
        yield
    for warning in held:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    """Instantiate everything and read the data, checking every setting, path and checkpoint
    before any work starts (no validation pass, no file written): a bad one raises ``ConfigError``."""
    with warnings_held_until_checked(), log_records_held(*HELD_LOGGERS):
        return checked_build(cfg)


def checked_build(cfg: DictConfig) -> tuple[L.LightningModule, L.LightningDataModule, L.Trainer]:
    problems = setting_problems(cfg)  # reported together with every group's own problems
    if cfg.get("seed") is not None and not problems:
        L.seed_everything(cfg.seed, workers=True, verbose=False)

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
    named = {
        name: attempt(f"callbacks.{name}")
        for name, node in (cfg.get("callbacks") or {}).items()
        if node is not None  # callbacks.NAME=null switches a default callback off
    }
    curriculum = attempt("curriculum") if cfg.get("curriculum") else None
    callbacks: list[Callback] = [c for c in (scheduler, curriculum) if c is not None] + list(named.values())
    logger = attempt("logger") if cfg.get("logger") else False
    if problems and (datamodule is None or module is None):
        problems[:0] = declared_objective_problems(cfg)
    stop_if(problems)
    if hasattr(datamodule, "use_objective"):  # data that serves several objectives serves the module's
        datamodule.use_objective(getattr(module, "objective", "lm"))
    stop_if(batch_problems(datamodule, module))
    problems = keep_problems(scheduler, module, datamodule) + vocabulary_problems(datamodule, module)
    problems += curriculum_problems(curriculum, module, datamodule)
    problems += length_problems(datamodule, module)
    problems += monitored_metric_problems(named, module) + unvalidated_metric_problems(named, validation_switch(cfg))
    problems += idle_checkpoint_problems(named)
    fingerprint = run_fingerprint(cfg, data_content(datamodule))
    callbacks += [RunFingerprint(fingerprint), TokenizerRecord(getattr(datamodule, "tokenizer_source", None))]
    if cfg.get("ckpt_path") is not None:
        max_steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
        strategy = strategy_kind(OmegaConf.select(cfg, "trainer.strategy", default="auto"))
        precision = OmegaConf.select(cfg, "trainer.precision", default="32-true")
        problems += resume_problems(
            cfg.ckpt_path,
            module,
            data_source(datamodule),
            max_steps,
            strategy,
            fingerprint,
            precision,
            scheduled_lr=lr_schedule is not None,
        )
    stop_if(problems)
    try:
        datamodule.setup("fit")  # read the data now, so a bad path fails before training
    except InvalidFieldsError as err:
        raise ConfigError(err.prefixed("data")) from err
    except (RuntimeError, MemoryError) as err:  # the digits upscaled to data.image_size=9000 are 582 GB
        if (too_large := out_of_memory("data", err)) is None:
            raise
        raise too_large from err
    stop_if(class_problems(datamodule, module))
    for switch, kind in (("trainer.enable_progress_bar", ProgressBar), ("trainer.enable_model_summary", ModelSummary)):
        if OmegaConf.select(cfg, switch, default=True) is False:
            callbacks = [c for c in callbacks if not isinstance(c, kind)]  # the switch alone turns ours off
    if logger is False:  # no logger: callbacks whose only output is the logger's would fail at setup
        callbacks = [c for c in callbacks if not isinstance(c, LOGGER_ONLY)]
    trainer = instantiate_group(cfg, "trainer", callbacks=callbacks, logger=logger)
    stop_if(lr_schedule_problems(lr_schedule, scheduler, module, datamodule, trainer, curriculum))
    for message in [*cadence_warnings(cfg), *endless_run_warnings(trainer, lr_schedule)]:
        warnings.warn(message, SettingWarning, stacklevel=2)
    return module, datamodule, trainer


def endless_run_warnings(trainer: L.Trainer, lr_schedule: Any) -> list[str]:
    """A run nothing ends: no step or epoch limit (Lightning's documented infinite training, so
    a warning, not an error), no ``max_time``, no layer-token budget stop, no early stopping."""
    from lightning.pytorch.callbacks import EarlyStopping, Timer

    limits = trainer.max_steps != -1 or trainer.max_epochs not in (-1, None)
    stoppers = any(isinstance(c, (Timer, EarlyStopping)) for c in trainer.callbacks)
    if limits or stoppers or getattr(lr_schedule, "budget", None) is not None:
        return []
    return [
        "trainer.max_steps=-1 and trainer.max_epochs=-1 with no trainer.max_time and no layer-token budget "
        "stop: the run trains until it is stopped (Ctrl-C, or SIGTERM, which checkpoints first)"
    ]


LOGGER_ONLY = (LearningRateMonitor, ThroughputMonitor)
"""Callbacks that only write to the logger: Lightning refuses ``LearningRateMonitor`` without one."""


def cadence_warnings(cfg: DictConfig) -> list[str]:
    """Cadences in batches longer than a run of ``trainer.max_steps``: validation (or logging)
    never happens during the fit. A warning, not an error: the defaults (validation every 300
    steps) are longer than a short trial run the user never set a cadence for."""
    trainer = cfg.get("trainer") or {}
    steps, accumulate = trainer.get("max_steps", -1), trainer.get("accumulate_grad_batches", 1)
    if not (is_int(steps) and steps > 0 and is_int(accumulate)):
        return []
    batches = steps * accumulate
    validates = trainer.get("limit_val_batches", 1) != 0
    cadences = (
        ("val_check_interval", "no validation runs during the fit", validates),
        ("log_every_n_steps", "no training metric is logged", True),
    )
    return [
        f"trainer.{key}={trainer[key]} is longer than the run (trainer.max_steps={steps}, {batches} batches): {effect}"
        for key, effect, applies in cadences
        if applies and is_int(trainer.get(key)) and trainer[key] > batches
    ]


def data_content(datamodule: Any) -> str:
    """The fingerprint of what the data module reads: its ``path``'s content, or its class for
    data that ships with a package (the digits)."""
    if not hasattr(datamodule, "path"):
        return type(datamodule).__qualname__
    return content_fingerprint(datamodule.path)


def original_message(err: BaseException) -> str:
    """The error's own line: a DataLoader worker re-raises it with the worker's traceback in the
    message, whose last line is ``module.Type: the original message``."""
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught "):
        return lines[-1].split(": ", 1)[-1]
    return lines[0] if lines else type(err).__name__


def setting_message(err: Exception) -> str:
    """Ours name their keys; Lightning's (``ModelCheckpoint(monitor='val/nope') could not find
    the monitored key ...``) name the callback or argument, up to its ``HINT``."""
    if isinstance(err, InvalidFieldsError):
        return str(err)
    return f"trainer: {' '.join(str(err).split()).split(' HINT:')[0]}"


EXIT_BAD_INPUT = 2
EXIT_NON_FINITE_LOSS = 3
EXIT_OS_ERROR = 5  # the machine refused a file operation (disk full, permissions, a lost mount)
EXIT_PREEMPTED = 128 + 15  # SIGTERM (SIGUSR1: 138): a checkpoint of the last whole step was written


def run_command(cfg: DictConfig) -> int:
    """``python train.py`` without the process: the exit code, with a failure's one line on stderr.

    2: a bad setting, path or checkpoint (nothing ran; a setting that can only be judged once the
    run has started, such as an LR warmup in steps longer than a total in layer-tokens, stops it
    where it is found); 3: the loss went non-finite (the last good
    checkpoint is kept); 5: a file operation failed (disk full, permissions), naming the file;
    143 / 138: stopped by SIGTERM / SIGUSR1 (preemption), after writing a
    checkpoint of the last whole step to ``checkpoints/last.ckpt``.
    """
    try:
        train(cfg)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except NonFiniteLossError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_NON_FINITE_LOSS
    except DataError as err:  # found as the data is read, in the main process or a loader worker
        print(f"error: {original_message(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (InvalidFieldsError, MisconfigurationException) as err:  # a setting judged once the run's shape is known
        print(f"error: {setting_message(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except OSError as err:
        if err.filename is None:  # not about a path: an unexpected failure keeps its traceback
            raise
        print(f"error: {err.filename}: {err.strerror or err}", file=sys.stderr)  # a full disk, a lost mount
        return EXIT_OS_ERROR
    except SIGTERMException as err:  # PreemptionCheckpoint wrote the checkpoint and set the code
        print(f"error: {err.args[0] if err.args else 'stopped by SIGTERM'}", file=sys.stderr)
        return err.code if isinstance(err.code, int) and err.code else EXIT_PREEMPTED
    return 0


def train(cfg: DictConfig) -> dict[str, Any]:
    """Build everything from ``cfg`` and run it; returns the run summary.

    ``cfg`` may come from ``python train.py`` / ``lightning-ltd-train`` or from Hydra's Compose
    API (``initialize_config_module("lightning_ltd.conf")`` + ``compose("train", overrides)``);
    a composed config has no Hydra run folder, so ``paths.output_dir`` then defaults to
    ``outputs/<date>/<time>`` under the working directory.
    """
    quiet_console()
    ensure_output_dir(cfg)
    lock = hold_output_dir(cfg)
    try:
        return run(cfg, *build(cfg))
    finally:
        if lock is not None:
            lock.release()


def hold_output_dir(cfg: DictConfig) -> RunLock | None:
    """Rank 0 locks ``paths.output_dir`` (one run per folder; the entry point may hold it already)
    and clears the checkpoint folder of an interrupted save's ``.partial`` files; None where this
    process takes no lock."""
    folder = OmegaConf.select(cfg, "paths.output_dir", default=None)
    if not isinstance(folder, str) or not is_launching_rank():
        return None
    reason = unwritable_folder(folder) if folder.strip() else "an empty path"
    if reason:
        raise ConfigError(f"paths.output_dir={folder!r}: cannot write there ({reason})")
    try:
        lock = hold(folder)
    except FolderInUseError as err:
        raise ConfigError(f"paths.output_dir={folder!r}: {err}") from err
    if (earlier := earlier_run_problem(folder, cfg.get("ckpt_path") is not None)) is not None:
        lock.release()
        raise ConfigError(f"paths.output_dir={folder!r} {earlier}")
    checkpoints = OmegaConf.select(cfg, "callbacks.model_checkpoint.dirpath", default=None)
    if isinstance(checkpoints, str):
        remove_partial_saves(checkpoints)
    return lock


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


@hydra.main(config_path="pkg://lightning_ltd.conf", config_name="train", version_base="1.3")
def main(cfg: DictConfig) -> None:
    """``lightning-ltd-train [group=option] [key=value ...]``: ``python train.py`` for an installed
    package (the configs travel inside it; ``--config-dir DIR`` adds a folder of one's own)."""
    sys.exit(run_hydra_job(cfg))


def run_hydra_job(cfg: DictConfig) -> int:
    """What a ``@hydra.main`` function runs (``python train.py``, ``lightning-ltd-train``): Hydra has
    set up logging by now, so Lightning's notes and the summary reach the console and train.log."""
    log_through_root()
    return run_command(cfg)


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
