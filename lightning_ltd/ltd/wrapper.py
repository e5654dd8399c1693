"""``RandomLTD``: run any block on a random, sorted subset of tokens during training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_ltd.ltd.sampling import TokenSampler
from lightning_ltd.ltd.tokens import (
    DEFAULT_TOKEN_RULES,
    TokenRule,
    as_rule,
    gather_tokens,
    scatter_tokens,
)

_BLOCK_PREFIX = "block."


class RandomLTD(nn.Module):
    """Wrap a block ``forward(x: [B, T, C], **kwargs) -> [B, T, C]`` (or a tuple led by it).

    In training mode with ``keep < T`` each row keeps ``keep`` random positions (sorted), the
    block runs on those only, its outputs are written back and dropped tokens pass unchanged.
    In eval mode, or with ``keep`` None or ``>= T``, it is exactly ``block(x, **kwargs)``.

    Args:
        block: the layer to wrap. Its parameters keep their own state-dict names (no
            ``block.`` prefix), so wrapping a pretrained block loads its old checkpoint.
        keep: kept tokens per row; None disables dropping.
        sampler: source of kept indices; share one across a model's layers for one RNG stream.
        token_kwargs: extra per-token keyword arguments to gather, each a rule, a token axis or
            several axes (batch is axis 0). ``position_ids``, ``key_padding_mask``, ``attn_mask``
            and ``attention_mask`` are gathered by default.
        static_kwargs: tensor keyword arguments to pass through untouched even though one of
            their sizes equals ``T`` (otherwise such an undeclared tensor is an error, because
            passing it unchanged would silently misalign it with the kept tokens).
        num_protected: leading tokens (e.g. [CLS]) that are always kept; 0 follows the paper.
    """

    def __init__(
        self,
        block: nn.Module,
        keep: int | None = None,
        *,
        sampler: TokenSampler | None = None,
        token_kwargs: Mapping[str, TokenRule | int | Sequence[int]] | None = None,
        static_kwargs: Sequence[str] = (),
        num_protected: int = 0,
    ) -> None:
        super().__init__()
        self.block = block
        self.keep = keep
        self.sampler = sampler if sampler is not None else TokenSampler()
        self.token_rules: dict[str, TokenRule] = dict(DEFAULT_TOKEN_RULES)
        self.token_rules.update({k: as_rule(v) for k, v in (token_kwargs or {}).items()})
        self.static_kwargs = frozenset(static_kwargs)
        if num_protected < 0:
            raise ValueError(f"num_protected must be >= 0, got {num_protected}")
        self.num_protected = num_protected
        self._register_state_dict_hook(_strip_block_prefix)
        self.register_load_state_dict_pre_hook(_add_block_prefix)

    @property
    def keep(self) -> int | None:
        return self._keep

    @keep.setter
    def keep(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise ValueError(f"keep must be a positive integer or None, got {value!r}")
        self._keep = None if value is None else int(value)

    def drops(self, seq_len: int) -> bool:
        """Whether a forward pass on ``seq_len`` tokens would drop any."""
        return self.training and self._keep is not None and self._keep < seq_len

    def forward(self, x: torch.Tensor, **kwargs: Any) -> Any:
        batch_size, seq_len = x.shape[0], x.shape[1]
        if not self.drops(seq_len):
            return self.block(x, **kwargs)
        keep = max(self._keep, self.num_protected)
        indices = self.sampler.sample(batch_size, seq_len, keep, x.device, self.num_protected)
        out = self.block(gather_tokens(x, indices), **self._gather_kwargs(kwargs, indices, seq_len))
        if isinstance(out, tuple):
            return (scatter_tokens(x, indices, out[0]), *out[1:])
        return scatter_tokens(x, indices, out)

    def _gather_kwargs(self, kwargs: dict[str, Any], indices: torch.Tensor, seq_len: int) -> dict[str, Any]:
        gathered = {}
        for name, value in kwargs.items():
            if not isinstance(value, torch.Tensor) or name in self.static_kwargs:
                gathered[name] = value
            elif name in self.token_rules:
                gathered[name] = self.token_rules[name](value, indices)
            elif seq_len in value.shape[1:]:
                raise ValueError(
                    f"RandomLTD: keyword tensor {name!r} of shape {tuple(value.shape)} has a "
                    f"size equal to the sequence length {seq_len}; declare it in token_kwargs "
                    "(to gather it with the kept tokens) or in static_kwargs (to pass it as is)"
                )
            else:
                gathered[name] = value
        return gathered

    def extra_repr(self) -> str:
        return f"keep={self._keep}, num_protected={self.num_protected}"


def _strip_block_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, _meta: Any) -> None:
    """State-dict hook: ``prefix.block.name`` -> ``prefix.name`` (wrapping keeps checkpoint names)."""
    inner = prefix + _BLOCK_PREFIX
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner) :]] = state_dict.pop(key)


def _add_block_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_args: Any) -> None:
    """Load pre-hook, the inverse of ``_strip_block_prefix`` (prefixed keys are accepted too)."""
    inner = prefix + _BLOCK_PREFIX
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix) :]] = state_dict.pop(key)


def find_ltd_layers(module: nn.Module) -> list[RandomLTD]:
    """Every ``RandomLTD`` inside ``module``, in registration order."""
    return [m for m in module.modules() if isinstance(m, RandomLTD)]


def get_keep(module: nn.Module) -> int | None:
    """The kept length of the first ``RandomLTD`` in ``module`` (None if none or disabled)."""
    layers = find_ltd_layers(module)
    return layers[0].keep if layers else None


def set_keep(module: nn.Module, keep: int | None) -> None:
    """Set the kept length of every ``RandomLTD`` in ``module`` (the one place the schedule writes)."""
    for layer in find_ltd_layers(module):
        layer.keep = keep


class KeptLength:
    """Descriptor: ``owner.keep`` reads, and sets, the kept length of every ``RandomLTD`` inside."""

    def __get__(self, owner: nn.Module | None, owner_type: type | None = None) -> Any:
        return self if owner is None else get_keep(owner)

    def __set__(self, owner: nn.Module, value: int | None) -> None:
        set_keep(owner, value)
