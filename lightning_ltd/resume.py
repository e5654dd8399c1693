"""Checks that a checkpoint given as ``ckpt_path`` fits the run, before any work starts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch

ARCHITECTURE_KEYS = (
    "vocab_size",
    "block_size",
    "n_layer",
    "n_head",
    "n_embd",
    "ltd_layers",
    "position",
    "bias",
    "type_vocab_size",
    "pre_norm",
    "image_size",
    "patch_size",
    "in_channels",
    "num_classes",
    "protect_cls",
)
"""Hyperparameters that shape the network or its routing: a resumed run must not change them."""

SCHEDULER_STATE = "RandomLTDScheduler"
DEFAULT_CORPUS = "(the embedded default corpus)"


def data_source(datamodule: Any) -> str | None:
    """What a datamodule reads (its ``path``, absolute), stored with the schedule's state and
    compared on resume; None for data modules that have no ``path``."""
    if datamodule is None or not hasattr(datamodule, "path"):
        return None
    path = datamodule.path
    return DEFAULT_CORPUS if path is None else str(Path(str(path)).expanduser().absolute())


def read_checkpoint(path: str) -> tuple[dict[str, Any] | None, str | None]:
    """The checkpoint (memory-mapped, ``weights_only=True``), or why it is not one."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # torch raises many kinds for corrupt, truncated or foreign files
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return None, f"not a readable checkpoint ({first_line[:160]})"
    if not isinstance(checkpoint, dict) or not {"state_dict", "global_step"} <= set(checkpoint):
        return None, "not a Lightning checkpoint (no state_dict and global_step)"
    return checkpoint, None


def resume_problems(path: str, module: L.LightningModule, data_source: str | None, max_steps: int | None) -> list[str]:
    """Everything about ``path`` that does not fit this run, each naming the key."""
    checkpoint, reason = read_checkpoint(path)
    if checkpoint is None:
        return [f"ckpt_path={path!r}: {reason}"]
    problems = []
    saved = checkpoint.get("hyper_parameters") or {}
    for key in ARCHITECTURE_KEYS:
        if key in saved and key in module.hparams and _plain(saved[key]) != _plain(module.hparams[key]):
            problems.append(
                f"model.{key}={_plain(module.hparams[key])!r} differs from the checkpoint's {_plain(saved[key])!r}"
            )
    if not problems:
        problems += _weight_problems(checkpoint["state_dict"], module.state_dict())
    step = int(checkpoint["global_step"])
    if max_steps is not None and max_steps >= 0 and step >= max_steps:
        problems.append(f"trainer.max_steps={max_steps}: the checkpoint is already at step {step}, nothing to train")
    saved_source = (checkpoint.get("callbacks") or {}).get(SCHEDULER_STATE, {}).get("data_source")
    if saved_source is not None and data_source is not None and saved_source != data_source:
        problems.append(f"data.path={data_source!r} differs from the checkpoint's data {saved_source!r}")
    return [f"ckpt_path={path!r}: {problem}" for problem in problems]


def _weight_problems(saved: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> list[str]:
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    reshaped = sorted(k for k in set(saved) & set(expected) if tuple(saved[k].shape) != tuple(expected[k].shape))
    if not (missing or unexpected or reshaped):
        return []
    examples = (missing + unexpected + reshaped)[:3]
    return [
        f"its weights do not fit the model ({len(missing)} missing, {len(unexpected)} unexpected, "
        f"{len(reshaped)} of another shape, e.g. {', '.join(examples)})"
    ]


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
