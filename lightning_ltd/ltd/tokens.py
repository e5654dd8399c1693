"""Gather kept tokens (and everything per-token a block reads) and scatter results back.

Every per-token tensor is indexed with the *same* kept indices as the hidden states, so
rotary position ids keep their original values and masks keep their original pairs of
tokens. (DeepSpeed slices ``mask[:k, :k]`` and renumbers positions ``0..k-1``; both are wrong
as soon as there is padding or rotary attention.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

TokenRule = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def gather_along(tensor: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
    """Select ``indices`` ``[B, k]`` along ``axis`` of ``tensor`` whose axis 0 is batch (B or 1)."""
    axis = axis % tensor.ndim
    if axis == 0:
        raise ValueError("the token axis cannot be the batch axis 0")
    batch, keep = indices.shape
    if tensor.shape[0] not in (1, batch):
        raise ValueError(f"leading (batch) size {tensor.shape[0]} is neither 1 nor {batch}")
    tensor = tensor.expand(batch, *tensor.shape[1:])
    view = [batch] + [1] * (tensor.ndim - 1)
    view[axis] = keep
    index_shape = list(tensor.shape)
    index_shape[axis] = keep
    return tensor.gather(axis, indices.view(view).expand(index_shape))


def gather_tokens(hidden: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``[B, T, C]`` -> ``[B, k, C]``: the kept tokens, in their original (sorted) order."""
    return gather_along(hidden, indices, 1)


def scatter_tokens(hidden: torch.Tensor, indices: torch.Tensor, kept_out: torch.Tensor) -> torch.Tensor:
    """Write ``kept_out`` ``[B, k, C]`` back at ``indices``; dropped tokens pass unchanged.

    Out-of-place ``scatter`` gives the right gradients: identity for dropped positions of
    ``hidden`` and, for kept positions, only the path through the block.
    """
    index = indices.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
    return hidden.scatter(1, index, kept_out.to(hidden.dtype))


def token_axes(*axes: int) -> TokenRule:
    """A rule that gathers a per-token tensor along each of ``axes`` (batch axis 0 first)."""

    def rule(tensor: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        for axis in axes:
            tensor = gather_along(tensor, indices, axis)
        return tensor

    return rule


def gather_mask(mask: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Masks by rank: ``[B, T]`` key padding, ``[B, T, T]`` or ``[B, H|1, T, T]`` on both token axes."""
    if mask.ndim == 2:
        return gather_along(mask, indices, 1)
    if mask.ndim in (3, 4):
        return gather_along(gather_along(mask, indices, -2), indices, -1)
    raise ValueError(f"a mask must be [B, T], [B, T, T] or [B, H, T, T], got shape {tuple(mask.shape)}")


DEFAULT_TOKEN_RULES: dict[str, TokenRule] = {
    "position_ids": token_axes(1),
    "key_padding_mask": token_axes(1),
    "attn_mask": gather_mask,
    "attention_mask": gather_mask,
}
"""Keyword names gathered by default: rotary positions ``[B, T]`` and the usual mask names."""


def as_rule(spec: TokenRule | int | Sequence[int]) -> TokenRule:
    """Accept a rule, a token axis, or several token axes."""
    if callable(spec):
        return spec
    if isinstance(spec, int):
        return token_axes(spec)
    return token_axes(*spec)
