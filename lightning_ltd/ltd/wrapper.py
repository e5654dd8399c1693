"""``RandomLTD``: run any block on a random, sorted subset of tokens during training."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_ltd.ltd.routing import RoutedKeep, TokenRouter
from lightning_ltd.ltd.tokens import TokenRule, as_rule, default_token_rules, gather_tokens, scatter_tokens

_BLOCK_PREFIX = "block."
_STANDALONE_ROWS = itertools.count()
"""Plan rows handed to wrappers built without a router, in construction order: two such
wrappers never draw the same indices, and the same program draws the same ones again."""


class RandomLTD(nn.Module):
    """Wrap a block ``forward(x: [B, T, C], **kwargs) -> [B, T, C]`` (or a tuple led by it).

    In training mode with ``keep < T`` each row keeps ``keep`` random positions (sorted), the
    block runs on those only, its outputs are written back and dropped tokens pass unchanged.
    In eval mode, or with ``keep`` None or ``>= T``, it is exactly ``block(x, **kwargs)``.

    The kept indices come from a ``TokenRouter``. Our models draw one plan per forward for all
    their dropping layers and pass each layer its slice as ``kept_indices``.
    ``apply_random_ltd`` gives each wrapped layer its row of one shared router's plan
    (``layer_index``) and moves the router on once per forward of the whole model. A wrapper
    built without a router gets a router of its own and the next free plan row, so two such
    wrappers never keep the same tokens.

    Masks are gathered with the tokens, on both token axes: ``[B, T]`` key padding, ``[T, T]``,
    ``[B, T, T]``, ``[B*H, T, T]`` and ``[B, H, T, T]`` attention masks (see
    ``gather_attn_mask``). A ``[T, T]`` mask becomes one mask per row: ``[B*H, k, k]`` when the
    block holds an ``nn.MultiheadAttention`` (its layout), ``[B, 1, k, k]`` otherwise.

    Args:
        block: the layer to wrap, batch first (``[B, T, C]``). Its parameters keep their own
            state-dict names (no ``block.`` prefix), so wrapping a pretrained block loads its
            old checkpoint.
        keep: kept tokens per row; None disables dropping. Sets the router's ``keep``.
        router: source of kept indices and holder of the kept length; shared by a model's
            layers. None: a router of this layer's own (``seed``, ``num_protected``).
        layer_index: this layer's row of the router's plan, drawn on every training call
            without moving the router on (its owner does, once per forward). None: draw row 0
            and move on (or, without a router, the next free row).
        token_kwargs: extra per-token keyword arguments to gather, each a rule, a token axis or
            several axes (batch is axis 0). ``position_ids``, ``key_padding_mask``,
            ``src_key_padding_mask``, ``attn_mask``, ``src_mask`` and ``attention_mask`` are
            gathered by default.
        static_kwargs: tensor keyword arguments to pass through untouched even though one of
            their sizes equals ``T`` (otherwise such an undeclared tensor is an error, because
            passing it unchanged would silently misalign it with the kept tokens).
        num_protected: leading tokens (e.g. [CLS]) that are always kept; 0 follows the paper.
            Like ``seed``, it configures the layer's own router (a given ``router`` has its own).
        seed: seed of the layer's own router.
        num_heads: attention heads, to tell ``[B*H, T, T]`` masks from ``[B, T, T]`` ones; None:
            read from an ``nn.MultiheadAttention`` inside ``block`` if there is one.
    """

    keep = RoutedKeep()  # the router's kept length, shared by every layer of that router

    def __init__(
        self,
        block: nn.Module,
        keep: int | None = None,
        *,
        router: TokenRouter | None = None,
        layer_index: int | None = None,
        token_kwargs: Mapping[str, TokenRule | int | Sequence[int]] | None = None,
        static_kwargs: Sequence[str] = (),
        num_protected: int = 0,
        seed: int = 0,
        num_heads: int | None = None,
    ) -> None:
        super().__init__()
        self.block = block
        self.advances = layer_index is None  # drawing moves the router on (nobody else does)
        if router is None:
            router = TokenRouter(1, keep=keep, seed=seed, num_protected=num_protected)
            layer_index = next(_STANDALONE_ROWS) if layer_index is None else layer_index
        elif keep is not None:
            router.keep = keep
        self.router = router
        self.layer_index = layer_index or 0
        attention = next((m for m in block.modules() if isinstance(m, nn.MultiheadAttention)), None)
        heads = num_heads if num_heads is not None else getattr(attention, "num_heads", None)
        self.token_rules: dict[str, TokenRule] = default_token_rules(heads, heads_in_batch=attention is not None)
        self.token_rules.update({k: as_rule(v) for k, v in (token_kwargs or {}).items()})
        self.static_kwargs = frozenset(static_kwargs)
        self._register_state_dict_hook(_strip_block_prefix)
        self.register_load_state_dict_pre_hook(_add_block_prefix)

    def drops(self, seq_len: int) -> bool:
        """Whether a forward pass on ``seq_len`` tokens would drop any."""
        return self.training and self.router.kept_length(seq_len) is not None

    def forward(self, x: torch.Tensor, kept_indices: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """``kept_indices`` ``[B, keep]``: this layer's slice of the model's plan (None: draw one)."""
        seq_len = x.shape[1]
        if kept_indices is None:
            if not self.drops(seq_len):
                return self.block(x, **kwargs)
            plan = self.router.layer_plan(self.layer_index, x.shape[0], seq_len)
            assert plan is not None
            if self.advances:
                self.router.advance()
            kept_indices = plan[0]
        out = self.block(gather_tokens(x, kept_indices), **self._gather_kwargs(kwargs, kept_indices, seq_len))
        if isinstance(out, tuple):
            return (scatter_tokens(x, kept_indices, out[0]), *out[1:])
        return scatter_tokens(x, kept_indices, out)

    def _gather_kwargs(self, kwargs: dict[str, Any], indices: torch.Tensor, seq_len: int) -> dict[str, Any]:
        gathered = {}
        for name, value in kwargs.items():
            if not isinstance(value, torch.Tensor) or name in self.static_kwargs:
                gathered[name] = value
            elif name in self.token_rules:
                try:
                    gathered[name] = self.token_rules[name](value, indices)
                except (ValueError, RuntimeError) as err:
                    raise ValueError(f"RandomLTD: keyword {name!r}: {err}") from err
            elif seq_len in value.shape[1:]:
                raise ValueError(
                    f"RandomLTD: keyword tensor {name!r} of shape {tuple(value.shape)} has a "
                    f"size equal to the sequence length {seq_len}; declare it in token_kwargs "
                    "(to gather it with the kept tokens) or in static_kwargs (to pass it as is)"
                )
            else:
                gathered[name] = value
        return gathered


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
