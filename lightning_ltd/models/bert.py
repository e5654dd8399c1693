"""BERT encoder with a masked-LM head; middle blocks drop tokens, padding masks travel along.

Embeddings and head use Hugging Face's names (``embeddings.word_embeddings``,
``cls.predictions.transform.dense``, ...); the encoder layers are the shared ``Block`` in its
post-LayerNorm form (``ln_1`` is HF's ``attention.output.LayerNorm``, ``ln_2`` is
``output.LayerNorm``, ``attn.c_attn`` is ``query``/``key``/``value`` stacked).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lightning_ltd.checks.schema import Fraction, PositiveFloat, PositiveInt
from lightning_ltd.models.base import LTDTransformer, TransformerConfig, init_normal
from lightning_ltd.models.transformer import Block


@dataclass
class BERTConfig(TransformerConfig):
    """Architecture of a BERT. ``pre_norm`` False is the original (post-LayerNorm) BERT."""

    vocab_size: PositiveInt = 260
    block_size: PositiveInt = 128
    type_vocab_size: PositiveInt = 2
    layer_norm_eps: PositiveFloat = 1e-12
    pre_norm: bool = False
    dropout: Fraction = 0.1


class BertEmbeddings(nn.Module):
    def __init__(self, c: BERTConfig) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(c.vocab_size, c.n_embd)
        self.position_embeddings = nn.Embedding(c.block_size, c.n_embd)
        self.token_type_embeddings = nn.Embedding(c.type_vocab_size, c.n_embd)
        self.LayerNorm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps)
        self.dropout = nn.Dropout(c.dropout)

    def forward(
        self, input_ids: torch.Tensor, token_type_ids: torch.Tensor, position_ids: torch.Tensor
    ) -> torch.Tensor:
        x = self.word_embeddings(input_ids) + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x + self.token_type_embeddings(token_type_ids)))


class BertLMHead(nn.Module):
    """``cls.predictions``: dense + GELU + LayerNorm, then the decoder tied to the word embeddings."""

    def __init__(self, c: BERTConfig, word_embeddings: nn.Embedding) -> None:
        super().__init__()
        self.transform = nn.Sequential()
        self.transform.add_module("dense", nn.Linear(c.n_embd, c.n_embd))
        self.transform.add_module("transform_act_fn", nn.GELU())
        self.transform.add_module("LayerNorm", nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps))
        self.decoder = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.decoder.weight = word_embeddings.weight
        self.bias = nn.Parameter(torch.zeros(c.vocab_size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.transform(hidden)) + self.bias


class BERT(LTDTransformer):
    """``forward(input_ids [B, T], attention_mask [B, T] (True/1 = real token)) -> logits [B, T, vocab]``.

    The key-padding mask is passed to every block; in dropping layers ``RandomLTD`` gathers it
    with the kept indices, so padded keys stay masked whatever is kept.
    """

    config: BERTConfig

    def __init__(self, config: BERTConfig, seed: int = 0) -> None:
        super().__init__(config, seed)
        c = config
        self.embeddings = BertEmbeddings(c)
        self.encoder = nn.Module()
        self.encoder.layer = self.build_layers(
            lambda: Block(
                c.n_embd,
                c.n_head,
                dropout=c.dropout,
                causal=False,
                layer_norm_eps=c.layer_norm_eps,
                activation="gelu",
                pre_norm=c.pre_norm,
            )
        )
        self.final_norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps) if c.pre_norm else nn.Identity()
        self.cls = nn.Module()
        self.cls.predictions = BertLMHead(c, self.embeddings.word_embeddings)
        self.apply(init_normal)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch, seq = input_ids.shape
        if seq > self.config.block_size:
            raise ValueError(f"sequence length {seq} exceeds block_size={self.config.block_size}")
        position_ids = torch.arange(seq, device=input_ids.device).expand(batch, -1)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        mask = None if attention_mask is None else attention_mask.bool()
        x = self.embeddings(input_ids, token_type_ids, position_ids)  # (B, T, C)
        x = self.run_layers(self.encoder.layer, x, attn_mask=mask)
        return self.cls.predictions(self.final_norm(x))  # (B, T, vocab)

    def training_flops(self, batch_size: int, seq_len: int, keep: int | None) -> int:
        """Matmul FLOPs of one training step (3 x forward), MLM head on every position."""
        c = self.config
        head = 2 * batch_size * seq_len * c.n_embd * (c.n_embd + c.vocab_size)
        return 3 * (self.layers_forward_flops(batch_size, seq_len, keep) + head)
