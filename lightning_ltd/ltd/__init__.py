"""Random-LTD in plain PyTorch: sampling, gather/scatter, the wrapper and the schedules."""

from lightning_ltd.ltd.sampling import TokenSampler, sample_kept_indices
from lightning_ltd.ltd.schedule import (
    default_dropping_layers,
    full_layer_tokens,
    layer_tokens_per_step,
    mslg_keep,
    theoretical_saving,
    validate_dropping_layers,
)
from lightning_ltd.ltd.tokens import gather_mask, gather_tokens, scatter_tokens, token_axes
from lightning_ltd.ltd.wrapper import KeptLength, RandomLTD, find_ltd_layers, get_keep, set_keep

__all__ = [
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
    "theoretical_saving",
    "token_axes",
    "validate_dropping_layers",
]
