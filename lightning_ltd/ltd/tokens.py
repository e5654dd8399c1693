"""Gather kept tokens (and everything per-token a block reads) and scatter results back.

Every per-token tensor is indexed with the *same* kept indices as the hidden states, so
rotary position ids keep their original values and masks keep their original pairs of
tokens. (DeepSpeed slices ``mask[:k, :k]`` and renumbers positions ``0..k-1``; both are wrong
as soon as there is padding or rotary attention.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

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


def _gather_square(mask: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Gather the key axis (-1) and, unless it broadcasts (size 1), the query axis (-2)."""
    if mask.shape[-2] != 1:
        mask = gather_along(mask, indices, -2)
    return gather_along(mask, indices, -1)


def gather_mask(mask: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Batched masks: ``[B, T]`` key padding; ``[B, T, T]``, ``[B, H|1, T|1, T]`` on their token axes."""
    if mask.ndim == 2:
        return gather_along(mask, indices, 1)
    if mask.ndim in (3, 4):
        return _gather_square(mask, indices)
    raise ValueError(f"must be [B, T], [B, T, T] or [B, H, T, T], got shape {tuple(mask.shape)}")


def gather_key_padding(mask: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` key padding (True or -inf: ignore that key) -> ``[B, k]``."""
    if mask.ndim != 2:
        raise ValueError(f"must be [B, T] (key padding), got shape {tuple(mask.shape)}")
    return gather_along(mask, indices, 1)


def gather_attn_mask(
    mask: torch.Tensor, indices: torch.Tensor, num_heads: int | None = None, heads_in_batch: bool = False
) -> torch.Tensor:
    """PyTorch's attention masks (``nn.MultiheadAttention``, ``scaled_dot_product_attention``).

    - ``[T, T]`` (one mask for every row): each row keeps its own pairs, so the result is
      per row: ``[B*H, k, k]`` when ``heads_in_batch`` (``nn.MultiheadAttention``'s layout),
      else ``[B, 1, k, k]`` (broadcasts over heads in SDPA and ``scores + mask``);
    - ``[B, T, T]`` or ``[1, T, T]`` -> ``[B, k, k]``; ``[B*H, T, T]`` -> ``[B*H, k, k]``
      (``num_heads`` tells B*H from B; without it a multiple of B is taken as B*H);
    - ``[B|1, H|1, T|1, T]`` -> gathered on its token axes.
    """
    batch = indices.shape[0]
    if mask.ndim == 2:
        per_row = _gather_square(mask.unsqueeze(0), indices)
        if heads_in_batch:
            return per_row.repeat_interleave(num_heads or 1, dim=0)
        return per_row.unsqueeze(1)
    if mask.ndim == 3:
        lead, seq_len = mask.shape[0], mask.shape[-1]
        if lead in (1, batch):
            return _gather_square(mask, indices)
        heads = num_heads if num_heads is not None else lead // batch
        if lead == batch * heads:
            by_head = _gather_square(mask.view(batch, heads, mask.shape[1], seq_len), indices)
            return by_head.flatten(0, 1)
        raise ValueError(
            f"shape {tuple(mask.shape)}: the leading size {lead} is neither 1, the batch {batch} nor batch x heads"
            + (f" ({batch * num_heads})" if num_heads else "")
        )
    if mask.ndim == 4:
        return _gather_square(mask, indices)
    raise ValueError(f"must be [T, T], [B, T, T], [B*H, T, T] or [B, H, T, T], got shape {tuple(mask.shape)}")


def gather_shared_or_batched(tensor: torch.Tensor, indices: torch.Tensor, shared_ndim: int, form: str) -> torch.Tensor:
    """A per-token tensor shared by every row (token axis 0, ``shared_ndim`` axes) or batched
    (``[B|1, T, ...]``) -> ``[B, k, ...]``: rows keep different tokens, so a shared one becomes per row."""
    if tensor.ndim == shared_ndim:
        return tensor[indices]
    if tensor.ndim == shared_ndim + 1:
        return gather_along(tensor, indices, 1)
    raise ValueError(f"must be {form}, got shape {tuple(tensor.shape)}")


def gather_positions(positions: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """Positions ``[T]`` (one row for all, like ``cache_position``) or ``[B|1, T]`` -> ``[B, k]``:
    the kept tokens' original positions."""
    return gather_shared_or_batched(positions, indices, 1, "[T] or [B, T] positions")


def gather_rotary(table: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """A rotary ``cos`` or ``sin`` table ``[T, hs]`` or ``[B|1, T, hs]`` -> ``[B, k, hs]``, so each
    kept token is rotated by its original position, never ``0..k-1``."""
    return gather_shared_or_batched(table, indices, 2, "a [T, hs] or [B, T, hs] rotary table")


def gather_alibi(alibi: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """An ALiBi bias ``[B*H, 1, T]`` (BLOOM: one slope times the key's position per head) ->
    ``[B*H, 1, k]``: each row's kept keys keep their original distances."""
    batch = indices.shape[0]
    by_row = alibi.view(batch, alibi.shape[0] // batch, *alibi.shape[1:])
    return gather_along(by_row, indices, -1).flatten(0, 1)


def default_token_rules(num_heads: int | None = None, heads_in_batch: bool = False) -> dict[str, TokenRule]:
    """Keyword names gathered by default: positions (``position_ids`` ``[B|1, T]`` or ``[T]``,
    ``cache_position`` ``[T]``), Hugging Face's rotary ``position_embeddings=(cos, sin)`` (each
    gathered, ``[B|1, T, hs]`` or ``[T, hs]``) and the usual mask names of PyTorch
    (``attn_mask``, ``key_padding_mask``, ``nn.TransformerEncoderLayer``'s ``src_mask`` and
    ``src_key_padding_mask``) and Hugging Face (``attention_mask``)."""
    attn = partial(gather_attn_mask, num_heads=num_heads, heads_in_batch=heads_in_batch)
    return {
        "position_ids": gather_positions,
        "cache_position": gather_positions,
        "position_embeddings": gather_rotary,
        "key_padding_mask": gather_key_padding,
        "src_key_padding_mask": gather_key_padding,
        "attn_mask": attn,
        "src_mask": attn,
        "attention_mask": gather_mask,
    }


def as_rule(spec: TokenRule | int | Sequence[int]) -> TokenRule:
    """Accept a rule, a token axis, or several token axes."""
    if callable(spec):
        return spec
    if isinstance(spec, int):
        return token_axes(spec)
    return token_axes(*spec)
