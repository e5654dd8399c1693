"""GPT-2 style decoder (nanoGPT layout and parameter names) whose middle blocks drop tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from lightning_ltd.errors import positive_int_problems, raise_if
from lightning_ltd.ltd import (
    RandomLTD,
    TokenSampler,
    default_dropping_layers,
    validate_dropping_layers,
)
from lightning_ltd.ltd.wrapper import KeptLength
from lightning_ltd.models.transformer import Block, block_forward_flops

POSITION_KINDS = ("learned", "rotary")


@dataclass
class GPTConfig:
    """Architecture of a GPT. ``ltd_layers`` None means the paper's default ``1 .. L-2``."""

    vocab_size: int = 256
    block_size: int = 256
    n_layer: int = 6
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = True
    position: str = "learned"
    rotary_base: float = 10000.0
    layer_norm_eps: float = 1e-5
    ltd_layers: list[int] | None = field(default=None)

    def __post_init__(self) -> None:
        raise_if(self.problems())
        self.ltd_layers = (
            default_dropping_layers(self.n_layer)
            if self.ltd_layers is None
            else validate_dropping_layers(list(self.ltd_layers), self.n_layer)
        )

    def problems(self) -> list[str]:
        """Every invalid field, each named, so one error reports them all (LitGPT's habit)."""
        problems = positive_int_problems(
            vocab_size=self.vocab_size,
            block_size=self.block_size,
            n_layer=self.n_layer,
            n_head=self.n_head,
            n_embd=self.n_embd,
        )
        if not problems and self.n_embd % self.n_head:
            problems.append(f"n_embd={self.n_embd} must be divisible by n_head={self.n_head}")
        if not problems and self.position == "rotary" and (self.n_embd // self.n_head) % 2:
            problems.append(
                f"position='rotary' needs an even head size, got n_embd/n_head={self.n_embd // self.n_head}"
            )
        if not 0.0 <= self.dropout < 1.0:
            problems.append(f"dropout={self.dropout!r} must be in [0, 1)")
        if self.position not in POSITION_KINDS:
            problems.append(f"position={self.position!r} must be one of {POSITION_KINDS}")
        if self.ltd_layers is not None and not problems:
            try:
                validate_dropping_layers(list(self.ltd_layers), self.n_layer)
            except ValueError as err:
                problems.append(f"ltd_layers={list(self.ltd_layers)}: {err}")
        return problems


class GPT(nn.Module):
    """Decoder-only transformer; ``forward(idx [B, T]) -> logits [B, T, vocab]``.

    Blocks listed in ``config.ltd_layers`` are wrapped in ``RandomLTD`` sharing one
    ``TokenSampler``; ``model.keep`` sets their kept length (None: no dropping).
    """

    keep = KeptLength()

    def __init__(self, config: GPTConfig, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.sampler = TokenSampler(seed)
        dropping = set(config.ltd_layers or [])
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "wpe": nn.Embedding(config.block_size, config.n_embd)
                if config.position == "learned"
                else nn.Identity(),
                "drop": nn.Dropout(config.dropout),
                "h": nn.ModuleList(
                    RandomLTD(self._block(), sampler=self.sampler) if i in dropping else self._block()
                    for i in range(config.n_layer)
                ),
                "ln_f": nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self.apply(self._init_weights)
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):  # GPT-2: scale residual projections by depth
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def _block(self) -> Block:
        c = self.config
        return Block(
            c.n_embd,
            c.n_head,
            bias=c.bias,
            dropout=c.dropout,
            causal=True,
            rotary_base=c.rotary_base if c.position == "rotary" else None,
            layer_norm_eps=c.layer_norm_eps,
        )

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def training_flops(self, batch_size: int, seq_len: int, keep: int | None) -> int:
        """Matmul FLOPs of one training step (forward + backward = 3 x forward) at this kept length.

        Agrees exactly with ``lightning.fabric.utilities.throughput.measure_flops`` (tested).
        """
        c = self.config
        kept = seq_len if keep is None else min(keep, seq_len)
        n_dropping = len(c.ltd_layers or [])
        forward = (
            (c.n_layer - n_dropping) * block_forward_flops(batch_size, seq_len, c.n_embd)
            + n_dropping * block_forward_flops(batch_size, kept, c.n_embd)
            + 2 * batch_size * seq_len * c.n_embd * c.vocab_size  # LM head
        )
        return 3 * forward

    def forward(self, idx: torch.Tensor, position_ids: torch.Tensor | None = None) -> torch.Tensor:
        batch, seq = idx.shape
        if seq > self.config.block_size:
            raise ValueError(f"sequence length {seq} exceeds block_size={self.config.block_size}")
        if position_ids is None:
            position_ids = torch.arange(seq, device=idx.device).expand(batch, -1)
        x = self.transformer.wte(idx)  # (B, T, C)
        if self.config.position == "learned":
            x = x + self.transformer.wpe(position_ids)  # positions travel with the tokens
        x = self.transformer.drop(x)
        for layer in self.transformer.h:
            x = layer(x, position_ids=position_ids)
        return self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab)
