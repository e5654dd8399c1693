"""Checks that a checkpoint given as ``ckpt_path`` fits the run, before any work starts."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from lightning_ltd.checks.checkpoint_layout import RESUME_STATE, SavedRun, read_checkpoint
from lightning_ltd.checks.fingerprint import fingerprint_problems
from lightning_ltd.checks.optimizer import fresh_optimizers, optimizer_problems

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


def resume_problems(
    path: str,
    module: L.LightningModule,
    data_source: str | None,
    max_steps: int | None,
    strategy: str = "other",
    fingerprint: dict[str, Any] | None = None,
    precision: Any = "32-true",
    scheduled_lr: bool = False,
) -> list[str]:
    """Everything about ``path`` that does not fit this run, each naming the key. ``strategy``:
    ``deepspeed``, ``fsdp`` or ``other`` (``strategy_kind``), which decides the layouts it loads;
    ``fingerprint``: this run's (``run_fingerprint``), compared with the checkpoint's;
    ``precision``: the trainer's, which decides the dtype its weights are stored in;
    ``scheduled_lr``: the run's LR schedule adds one scheduler per optimizer (``callbacks.lr``)."""
    saved, reason = read_checkpoint(path)
    if saved is None:
        return [f"ckpt_path={path!r}: {reason}"]
    problems = layout_problems(saved.layout, strategy)
    if fingerprint is not None:
        problems += fingerprint_problems(saved.fingerprint, fingerprint)
    for key in ARCHITECTURE_KEYS:
        ours, theirs = _plain(module.hparams.get(key)), _plain(saved.hyper_parameters.get(key))
        if key in saved.hyper_parameters and key in module.hparams and theirs != ours:
            problems.append(f"model.{key}={ours!r} differs from the checkpoint's {theirs!r}")
    if saved.missing:
        problems.append(
            f"it holds no {_listed(saved.missing, 'or')} (a weights-only save?): an exact resume needs "
            f"{_listed(RESUME_STATE, 'and')}; "
            "start from its weights with model.pretrained instead"
        )
    if not problems:
        expected = module.state_dict()
        stored = weight_dtype(precision)
        problems += (
            _weight_problems(saved.weight_shapes, expected)
            or _dtype_problems(saved.weight_dtypes, expected, stored)
            or _moment_problems(saved.moment_dtypes, stored)
            or _optimizer_problems(saved, module, scheduled_lr)
        )
    if saved.non_finite is not None:
        problems.append(f"{saved.non_finite} holds a NaN or inf: resume from an earlier checkpoint")
    if max_steps is not None and max_steps >= 0 and saved.global_step >= max_steps:
        problems.append(
            f"trainer.max_steps={max_steps}: the checkpoint is already at step {saved.global_step}, nothing to train"
        )
    from lightning_ltd.callbacks.schedule import RandomLTDScheduler

    if SCHEDULER_STATE not in saved.callbacks:
        problems.append(
            f"it holds no {SCHEDULER_STATE} state (the layer-token count the LR schedule and budget go on "
            "from); start from its weights with model.pretrained instead"
        )
    problems += RandomLTDScheduler.saved_state_problems(saved.callbacks.get(SCHEDULER_STATE, {}), saved.global_step)
    saved_source = saved.callbacks.get(SCHEDULER_STATE, {}).get("data_source")
    compared_content = fingerprint is not None and saved.fingerprint is not None  # a path may move, content not
    if saved_source is not None and data_source is not None and saved_source != data_source and not compared_content:
        problems.append(f"data.path={data_source!r} differs from the checkpoint's data {saved_source!r}")
    return [f"ckpt_path={path!r}: {problem}" for problem in problems]


def layout_problems(layout: str, strategy: str) -> list[str]:
    """A folder resumes only under the strategy that writes it; a file under any but DeepSpeed
    (which loads its own folders)."""
    if layout == "deepspeed" and strategy != "deepspeed":
        return ["a DeepSpeed checkpoint folder resumes with trainer=deepspeed only (set trainer.strategy)"]
    if layout == "sharded" and strategy != "fsdp":
        return ["a sharded FSDP checkpoint folder resumes with trainer=fsdp only (set trainer.strategy)"]
    if layout == "file" and strategy == "deepspeed":
        return [
            "trainer.strategy: DeepSpeed resumes from its own checkpoint folders, not a single file "
            "(load its weights with model.pretrained, or resume with the strategy that wrote it)"
        ]
    return []


def strategy_kind(strategy: Any) -> str:
    """``deepspeed``, ``fsdp`` or ``other`` for a ``trainer.strategy`` value (a name, a config
    node with ``_target_``, or a strategy object)."""
    target = strategy.get("_target_", "") if hasattr(strategy, "get") else strategy
    name = (target if isinstance(target, str) else type(target).__name__).lower()
    return "deepspeed" if "deepspeed" in name else "fsdp" if "fsdp" in name else "other"


def _weight_problems(saved: dict[str, tuple[int, ...]], expected: dict[str, torch.Tensor]) -> list[str]:
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    reshaped = sorted(k for k in set(saved) & set(expected) if saved[k] != tuple(expected[k].shape))
    if not (missing or unexpected or reshaped):
        return []
    examples = (missing + unexpected + reshaped)[:3]
    return [
        f"its weights do not fit the model ({len(missing)} missing, {len(unexpected)} unexpected, "
        f"{len(reshaped)} of another shape, e.g. {', '.join(examples)})"
    ]


def weight_dtype(precision: Any) -> torch.dtype | None:
    """The dtype a ``-true`` ``trainer.precision`` converts the module's floating weights to
    (None: the module keeps its own, as mixed precision does)."""
    return {"bf16-true": torch.bfloat16, "16-true": torch.float16, "64-true": torch.float64, "64": torch.float64}.get(
        str(precision)
    )


def _dtype_problems(
    saved: dict[str, torch.dtype], expected: dict[str, torch.Tensor], floats: torch.dtype | None
) -> list[str]:
    """A weight stored in another dtype would be cast silently on load (int64 zeros included)."""
    wanted = {k: floats if floats is not None and v.is_floating_point() else v.dtype for k, v in expected.items()}
    cast = [k for k in wanted if k in saved and saved[k] != wanted[k]]
    if not cast:
        return []
    first = cast[0]
    return [
        f"{len(cast)} weight(s) are stored in another dtype than this run's, e.g. {first} is "
        f"{str(saved[first]).removeprefix('torch.')}, not {str(wanted[first]).removeprefix('torch.')}"
    ]


def _moment_problems(saved: dict[str, torch.dtype], floats: torch.dtype | None) -> list[str]:
    """Optimizer moments are cast to their parameter's dtype on load: an integer moment would
    restart from its rounded values, a float16 one lose range, without a word."""
    wanted = floats or torch.float32
    cast = [k for k, dtype in saved.items() if dtype != wanted]
    if not cast:
        return []
    first = cast[0]
    return [
        f"{len(cast)} optimizer state(s) are stored in another dtype than this run's, e.g. {first} is "
        f"{str(saved[first]).removeprefix('torch.')}, not {str(wanted).removeprefix('torch.')}"
    ]


def _optimizer_problems(saved: SavedRun, module: L.LightningModule, scheduled_lr: bool) -> list[str]:
    """The checkpoint's optimizer and LR-scheduler states against a fresh optimizer of the
    module's (skipped for folder layouts, whose optimizer lives in the strategy's own files, and
    for a ``configure_optimizers`` that needs a trainer)."""
    fresh = fresh_optimizers(module) if saved.optimizer_states is not None else None
    if fresh is None:
        return []
    optimizers, schedulers = fresh
    schedulers += len(optimizers) if scheduled_lr else 0
    states = saved.optimizer_states or []
    return optimizer_problems(states, saved.lr_scheduler_count, optimizers, schedulers, saved.global_step)


def _listed(names: tuple[str, ...], last: str) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} {last} {names[-1]}"


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
