"""Random-LTD in plain PyTorch: sampling, gather/scatter, the wrapper and the schedules."""

from lightning_ltd.ltd.lr import LayerTokenLR, RunShape, StepLR
from lightning_ltd.ltd.sampling import TokenSampler, sample_kept_indices
from lightning_ltd.ltd.schedule import (
    default_dropping_layers,
    full_layer_tokens,
    layer_tokens_per_step,
    mslg_keep,
    schedule_layer_tokens,
    theoretical_saving,
    validate_dropping_layers,
    warmup_decay_lr,
)
from lightning_ltd.ltd.tokens import gather_mask, gather_tokens, scatter_tokens, token_axes
from lightning_ltd.ltd.wrapper import KeptLength, RandomLTD, find_ltd_layers, get_keep, set_keep

__all__ = [
    "LayerTokenLR",
    "RunShape",
    "StepLR",
    "KeptLength",
    "RandomLTD",
    "TokenSampler",
    "default_dropping_layers",
    "find_ltd_layers",
    "get_keep",
    "set_keep",
    "full_layer_tokens",
    "gather_mask",
    "gather_tokens",
    "layer_tokens_per_step",
    "mslg_keep",
    "sample_kept_indices",
    "scatter_tokens",
    "schedule_layer_tokens",
    "warmup_decay_lr",
    "theoretical_saving",
    "token_axes",
    "validate_dropping_layers",
]
