"""GPT-2 style decoder (nanoGPT layout and parameter names) whose middle blocks drop tokens."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from lightning_ltd.checks.schema import PositiveFloat, PositiveInt
from lightning_ltd.models.base import LTDTransformer, TransformerConfig, init_normal
from lightning_ltd.models.transformer import Block

Position = Literal["learned", "rotary"]


@dataclass
class GPTConfig(TransformerConfig):
    """Architecture of a GPT (pre-LayerNorm, causal, tied embeddings)."""

    vocab_size: PositiveInt = 256
    block_size: PositiveInt = 256
    bias: bool = True
    position: Position = "learned"
    rotary_base: PositiveFloat = 10000.0
    layer_norm_eps: PositiveFloat = 1e-5

    def extra_problems(self, sizes_valid: bool) -> list[str]:
        if sizes_valid and self.position == "rotary" and (self.n_embd // self.n_head) % 2:
            return [f"position='rotary' needs an even head size, got n_embd/n_head={self.n_embd // self.n_head}"]
        return []


class GPT(LTDTransformer):
    """Decoder-only transformer; ``forward(idx [B, T]) -> logits [B, T, vocab]``.

    Blocks listed in ``config.ltd_layers`` are wrapped in ``RandomLTD`` sharing one
    ``TokenRouter``; ``model.keep`` sets their kept length (None: no dropping).
    """

    config: GPTConfig

    def __init__(self, config: GPTConfig, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.transformer = nn.ModuleDict(
            {
                "wte": nn.Embedding(config.vocab_size, config.n_embd),
                "wpe": nn.Embedding(config.block_size, config.n_embd)
                if config.position == "learned"
                else nn.Identity(),
                "drop": nn.Dropout(config.dropout),
                "h": self.build_layers(self._block),
                "ln_f": nn.LayerNorm(config.n_embd, eps=config.layer_norm_eps, bias=config.bias),
            }
        )
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self.apply(init_normal)
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

    def training_flops(self, batch_size: int, seq_len: int, keep: int | None) -> int:
        """Matmul FLOPs of one training step (forward + backward = 3 x forward) at this kept length.

        Agrees exactly with ``lightning.fabric.utilities.throughput.measure_flops`` (tested).
        """
        c = self.config
        lm_head = 2 * batch_size * seq_len * c.n_embd * c.vocab_size
        forward = self.layers_forward_flops(batch_size, seq_len, keep) + lm_head
        return 3 * forward

    supports_kv_cache = True  # evaluation's generation passes ``cache`` (``evaluate.generation``)

    def forward(
        self,
        idx: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        cache: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """Logits of ``idx``; ``attn_mask`` ``[B, keys]`` (True: attend) and ``cache`` (the keys
        and values of earlier positions, extended in place) serve batched, cached generation."""
        batch, seq = idx.shape
        if seq > self.config.block_size:
            raise ValueError(f"sequence length {seq} exceeds block_size={self.config.block_size}")
        if position_ids is None:
            position_ids = torch.arange(seq, device=idx.device).expand(batch, -1)
        x = self.transformer.wte(idx)  # (B, T, C)
        if self.config.position == "learned":
            x = x + self.transformer.wpe(position_ids)  # positions travel with the tokens
        x = self.transformer.drop(x)
        extra = {} if cache is None and attn_mask is None else {"attn_mask": attn_mask, "cache": cache}
        x = self.run_layers(self.transformer.h, x, position_ids=position_ids, **extra)
        return self.lm_head(self.transformer.ln_f(x))  # (B, T, vocab)
