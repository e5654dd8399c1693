"""Problems that the composed config alone shows, before anything is built: the run's own keys,
the trainer's, folders the run will write into, this machine's devices, cores and memory, and
lengths that contradict each other. Each problem names its key."""

from __future__ import annotations

import functools
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.accelerators import AcceleratorRegistry
from omegaconf import DictConfig, OmegaConf

from lightning_ltd.checkpoint import unwritable_folder
from lightning_ltd.checks import machine
from lightning_ltd.checks.settings import RunSettings
from lightning_ltd.checks.targets import type_problems, value_problems
from lightning_ltd.errors import is_int, is_number


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


def required_problems(cfg: DictConfig) -> list[str]:
    """Keys the chosen experiment needs and the user has not set (``required_keys``)."""
    return [
        f"{key} must be set (experiment needs it): add {key}=..."
        for key in cfg.get("required_keys") or []
        if OmegaConf.select(cfg, key, default=None, throw_on_missing=False) in (None, "???")
    ]


def setting_problems(cfg: DictConfig) -> list[str]:
    """What can be judged from the config alone (no object built, no file read but ``ckpt_path``'s)."""
    problems = required_problems(cfg) + run_setting_problems(cfg) + cross_check(cfg) + folder_problems(cfg)
    ckpt_path = cfg.get("ckpt_path")
    named = isinstance(ckpt_path, str) and ckpt_path.strip()  # other types: the schema; '': PATH_KEYS
    if named and not Path(ckpt_path).expanduser().exists():
        problems.append(f"ckpt_path={ckpt_path!r}: no such checkpoint file or folder")
    return problems


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
        ("val_check_interval", "no validation between the first step and the last", validates),
        ("log_every_n_steps", "no training metric is logged", True),
    )
    return [
        f"trainer.{key}={trainer[key]} is longer than the run (trainer.max_steps={steps}, {batches} batches): {effect}"
        for key, effect, applies in cadences
        if applies and is_int(trainer.get(key)) and trainer[key] > batches
    ]
