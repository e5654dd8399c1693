"""The optimizer of a ``RandomLTDModule``: its setting types, its parameter groups, building it,
and clipping under FSDP."""

from __future__ import annotations

from typing import Any, Literal

import lightning as L
import torch

from lightning_ltd.checks.schema import Fraction

OptimizerName = Literal["adamw", "sgd"]
Betas = tuple[Fraction, Fraction]
WRAPPER_PREFIXES = ("_fsdp_wrapped_module.", "_checkpoint_wrapped_module.", "_orig_mod.")
"""Name segments that FSDP, activation checkpointing and ``torch.compile`` insert."""


def plain_name(name: str) -> str:
    """A parameter's name as the unwrapped model spells it."""
    for prefix in WRAPPER_PREFIXES:
        name = name.replace(prefix, "")
    return name


def decayed_names(model: torch.nn.Module) -> set[str]:
    """Matrices (and embeddings) decay; biases and norm gains do not (nanoGPT). Judged on the
    unwrapped model: FSDP's sharded views are all one-dimensional."""
    return {plain_name(name) for name, p in model.named_parameters() if p.ndim >= 2}


def weight_decay_groups(
    model: torch.nn.Module, weight_decay: float, decayed: set[str] | None = None
) -> list[dict[str, Any]]:
    """Two groups by name: ``decayed`` (default: judged now by shape) and the rest."""
    decayed = decayed_names(model) if decayed is None else decayed
    named = [(plain_name(name), p) for name, p in model.named_parameters() if p.requires_grad]
    return [
        {"params": [p for name, p in named if name in decayed], "weight_decay": weight_decay},
        {"params": [p for name, p in named if name not in decayed], "weight_decay": 0.0},
    ]


def build_optimizer(
    model: torch.nn.Module, hparams: Any, decayed: set[str] | None, on_cuda: bool
) -> torch.optim.Optimizer:
    """AdamW from ``lr``, ``weight_decay``, ``betas`` (or, with ``optimizer="sgd"``, SGD with
    ``momentum``); decay on matrices only; the fused CUDA kernel on GPUs (one launch for all
    parameters instead of several per tensor)."""
    groups = weight_decay_groups(model, hparams.weight_decay, decayed)
    fused = on_cuda or None
    if hparams.get("optimizer", "adamw") == "sgd":
        return torch.optim.SGD(groups, lr=hparams.lr, momentum=hparams.get("momentum", 0.9), fused=fused)
    return torch.optim.AdamW(groups, lr=hparams.lr, betas=tuple(hparams.betas), fused=fused)


def clip_sharded(trainer: L.Trainer, clip_val: float | None, algorithm: str | None) -> bool:
    """Under FSDP, clip by norm through the sharded root module (``clip_grad_norm_`` reduces the
    norm over ranks), which Lightning's FSDP precision plugin refuses to do. False: not FSDP."""
    from lightning.pytorch.strategies import FSDPStrategy

    strategy = trainer.strategy
    if clip_val and isinstance(strategy, FSDPStrategy) and algorithm in (None, "norm"):
        strategy.model.clip_grad_norm_(clip_val)
        return True
    return False
