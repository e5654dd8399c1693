"""What GPT, BERT and ViT share: the validated config core, the layer stack with RandomLTD
around the dropping blocks, the kept-length handle and the per-layer FLOP count."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_ltd.checks.schema import Fraction, PositiveInt, field_problems
from lightning_ltd.errors import raise_if
from lightning_ltd.ltd import RandomLTD, TokenRouter, default_dropping_layers, validate_dropping_layers
from lightning_ltd.ltd.routing import RoutedKeep
from lightning_ltd.ltd.schedule import kept_tokens
from lightning_ltd.ltd.tokens import gather_mask
from lightning_ltd.models.transformer import block_forward_flops


@dataclass
class TransformerConfig:
    """Fields every model has. ``ltd_layers`` None means the paper's default ``1 .. L-2``."""

    n_layer: PositiveInt = 6
    n_head: PositiveInt = 4
    n_embd: PositiveInt = 128
    dropout: Fraction = 0.0
    ltd_layers: list[int] | None = field(default=None)
    activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        raise_if(self.problems())
        self.ltd_layers = (
            default_dropping_layers(self.n_layer)
            if self.ltd_layers is None
            else validate_dropping_layers(list(self.ltd_layers), self.n_layer)
        )

    def extra_problems(self, sizes_valid: bool) -> list[str]:
        """Model-specific checks; those that divide sizes only when ``sizes_valid``."""
        return []

    def problems(self) -> list[str]:
        """Every invalid field, each named, so one error reports them all (LitGPT's habit)."""
        problems = [p for p in field_problems(self) if not p.startswith("ltd_layers=")]  # checked below, by index
        sizes_valid = not problems
        if not sizes_valid:
            return problems + self.extra_problems(sizes_valid)
        if self.n_embd % self.n_head:
            problems.append(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if self.ltd_layers is not None:
            try:
                validate_dropping_layers(list(self.ltd_layers), self.n_layer)
            except ValueError as err:
                problems.append(f"ltd_layers={list(self.ltd_layers)}: {err}")
        return problems + self.extra_problems(sizes_valid and not problems)


class LTDTransformer(nn.Module):
    """Base of our models: one ``TokenRouter`` holds the kept length (``model.keep``) and draws
    one routing plan per training forward, sliced among the dropping layers."""

    keep = RoutedKeep()

    def __init__(self, config: TransformerConfig, seed: int = 0, num_protected: int = 0) -> None:
        super().__init__()
        self.config = config
        self.router = TokenRouter(len(config.ltd_layers or []), seed=seed, num_protected=num_protected)

    def build_layers(self, make_block: Callable[[], nn.Module]) -> nn.ModuleList:
        """``n_layer`` blocks; those in ``config.ltd_layers`` wrapped in RandomLTD on the shared router."""
        dropping = set(self.config.ltd_layers or [])
        batched_mask = {"attn_mask": gather_mask}  # Block's attn_mask is batched: [B, T] key padding or [B, (H,) T, T]
        return nn.ModuleList(
            RandomLTD(make_block(), router=self.router, token_kwargs=batched_mask) if i in dropping else make_block()
            for i in range(self.config.n_layer)
        )

    def run_layers(self, layers: nn.ModuleList, x: torch.Tensor, **kwargs: torch.Tensor | None) -> torch.Tensor:
        """Run the block stack; in training, read one plan and give each dropping layer its slice.

        With ``config.activation_checkpointing`` each block's activations are recomputed in
        backward (``torch.utils.checkpoint``, non-reentrant, dropout replayed): the plan is read
        here, before the blocks, and nothing in a forward moves it on, so a recomputed block
        keeps the same tokens.
        """
        plan = self.router.plan(x.shape[0], x.shape[1]) if self.training else None
        recompute = self.config.activation_checkpointing and self.training and torch.is_grad_enabled()
        slot = 0
        for layer in layers:
            extra: dict[str, torch.Tensor | None] = {}
            if isinstance(layer, RandomLTD):
                extra["kept_indices"] = None if plan is None else plan[slot]
                slot += 1
            if recompute:
                x = checkpoint(layer, x, use_reentrant=False, **kwargs, **extra)
            else:
                x = layer(x, **kwargs, **extra)
        return x

    def layers_forward_flops(self, batch_size: int, seq_len: int, keep: int | None) -> int:
        """Forward matmul FLOPs of the block stack, dropping layers at the kept length."""
        c = self.config
        kept = kept_tokens(keep, seq_len)
        n_dropping = len(c.ltd_layers or [])
        return (c.n_layer - n_dropping) * block_forward_flops(batch_size, seq_len, c.n_embd) + n_dropping * (
            block_forward_flops(batch_size, kept, c.n_embd)
        )


def init_normal(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2/BERT/ViT style init: normal(0, std) weights, zero biases, unit LayerNorm."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, mean=0.0, std=std)
