"""One transformer block for every model here (GPT-2 parameter names: ln_1, attn, ln_2, mlp).

The block knows nothing about token dropping: it attends over whatever tokens it is given,
reading their original positions (``position_ids``) and mask entries from its keyword
arguments, which ``RandomLTD`` gathers with the kept indices.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat([-second, first], dim=-1)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (rotate-half convention) driven by explicit position ids.

    Angles are computed in float32 from the integer positions on every call, whatever the
    module's dtype: a bf16 copy of the frequencies or positions (``model.bfloat16()``,
    ``precision=bf16-true``, FSDP/DeepSpeed bf16 casting buffers) has 8 bits of mantissa, so
    positions above 256 would collapse onto shared angles. Nothing here is a buffer to cast.
    """

    def __init__(self, head_size: int, base: float = 10000.0) -> None:
        super().__init__()
        if head_size % 2:
            raise ValueError(f"rotary embeddings need an even head size, got {head_size}")
        self.head_size = head_size
        self.base = base

    def angles(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Float32 angles ``(B, T, hs)`` of integer ``position_ids`` ``(B, T)``."""
        exponents = torch.arange(0, self.head_size, 2, dtype=torch.float32, device=position_ids.device)
        inv_freq = 1.0 / (self.base ** (exponents / self.head_size))
        angles = position_ids.to(torch.float32)[..., None] * inv_freq  # (B, T, hs/2)
        return torch.cat([angles, angles], dim=-1)

    def forward(
        self, q: torch.Tensor, k: torch.Tensor, position_ids: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Rotate ``q, k`` ``(B, nh, T, hs)`` by the angles of ``position_ids`` ``(B, T)``."""
        angles = self.angles(position_ids).unsqueeze(1)  # (B, 1, T, hs)
        cos, sin = angles.cos().to(q.dtype), angles.sin().to(q.dtype)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin


def attention_bias(attn_mask: torch.Tensor | None, causal: bool, n_query: int, n_key: int) -> torch.Tensor | None:
    """Turn a key-padding ``[B, T]`` or full ``[B, H|1, T, T]`` mask (True = attend) into SDPA's form.

    Float masks are additive and kept as they are. With ``causal`` the lower-triangular mask is
    and-ed in; over a sorted subset of tokens that is still exact causality. With fewer queries
    than keys (a KV cache) the queries are the last ``n_query`` positions.
    """
    if attn_mask is None:
        return None
    if attn_mask.ndim == 2:
        attn_mask = attn_mask[:, None, None, :]
    elif attn_mask.ndim == 3:
        attn_mask = attn_mask[:, None]
    offset = n_key - n_query
    if causal:
        tril = torch.ones(n_query, n_key, dtype=torch.bool, device=attn_mask.device).tril(offset)
        is_bool = attn_mask.dtype == torch.bool
        attn_mask = attn_mask & tril if is_bool else attn_mask.masked_fill(~tril, float("-inf"))
    if attn_mask.dtype == torch.bool:
        # Every token may attend to itself. Real tokens could anyway; a padding token whose
        # keys are all masked (possible when dropping keeps only padding in a row, or under
        # left padding) would otherwise produce NaN, and NaN times a zero attention weight
        # still leaks into real tokens in the next layer.
        keys = torch.arange(n_key, device=attn_mask.device)
        itself = keys[None, :] == torch.arange(n_query, device=attn_mask.device)[:, None] + offset
        attn_mask = attn_mask | itself
    return attn_mask


class SelfAttention(nn.Module):
    def __init__(
        self, n_embd: int, n_head: int, *, bias: bool, dropout: float, causal: bool, rotary_base: float | None
    ) -> None:
        super().__init__()
        self.n_head = n_head
        self.causal = causal
        self.dropout = dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=bias)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=bias)
        self.resid_dropout = nn.Dropout(dropout)
        self.rotary = None if rotary_base is None else RotaryEmbedding(n_embd // n_head, rotary_base)

    def forward(
        self,
        x: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        cache: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        """``cache`` (evaluation's generation only): this layer's keys and values of the earlier
        positions, extended in place; ``attn_mask`` then covers them too."""
        batch, seq, channels = x.shape
        q, k, v = self.c_attn(x).split(channels, dim=2)
        q, k, v = (t.view(batch, seq, self.n_head, -1).transpose(1, 2) for t in (q, k, v))  # (B, nh, T, hs)
        if self.rotary is not None:
            if position_ids is None:
                position_ids = torch.arange(seq, device=x.device).expand(batch, -1)
            q, k = self.rotary(q, k, position_ids)
        if cache is not None:
            if self in cache:
                k, v = (torch.cat([past, new], dim=2) for past, new in zip(cache[self], (k, v), strict=True))
            cache[self] = (k, v)
        bias = attention_bias(attn_mask, self.causal, seq, k.shape[2])
        y = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=bias,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=self.causal and bias is None,
        )
        y = y.transpose(1, 2).reshape(batch, seq, channels)
        return self.resid_dropout(self.c_proj(y))


ACTIVATIONS = ("gelu_tanh", "gelu")


class MLP(nn.Module):
    def __init__(self, n_embd: int, *, bias: bool, dropout: float, activation: str = "gelu_tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} must be one of {ACTIVATIONS}")
        self.c_fc = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.act = nn.GELU(approximate="tanh" if activation == "gelu_tanh" else "none")
        self.c_proj = nn.Linear(4 * n_embd, n_embd, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


def block_forward_flops(batch_size: int, n_tokens: int, n_embd: int) -> int:
    """Matmul FLOPs of one block's forward on ``n_tokens`` tokens per row.

    Projections ``2 * B * n * 12 C^2`` (qkv, output, two MLP matrices) plus attention
    ``4 * B * n^2 * C`` (scores and weighted sum, causal masking not discounted), which is how
    ``torch.utils.flop_counter`` counts them. Dropping cuts the first linearly, the second
    quadratically.
    """
    return 24 * batch_size * n_tokens * n_embd**2 + 4 * batch_size * n_tokens**2 * n_embd


class Block(nn.Module):
    """Transformer block, pre-LayerNorm (GPT, ViT) or post-LayerNorm (BERT).

    Pre: ``x + attn(ln_1(x))`` then ``x + mlp(ln_2(x))``. Post: ``ln_1(x + attn(x))`` then
    ``ln_2(x + mlp(x))``, the original transformer and BERT.
    """

    def __init__(
        self,
        n_embd: int,
        n_head: int,
        *,
        bias: bool = True,
        dropout: float = 0.0,
        causal: bool = True,
        rotary_base: float | None = None,
        layer_norm_eps: float = 1e-5,
        activation: str = "gelu_tanh",
        pre_norm: bool = True,
    ) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.ln_1 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.attn = SelfAttention(n_embd, n_head, bias=bias, dropout=dropout, causal=causal, rotary_base=rotary_base)
        self.ln_2 = nn.LayerNorm(n_embd, eps=layer_norm_eps, bias=bias)
        self.mlp = MLP(n_embd, bias=bias, dropout=dropout, activation=activation)

    def forward(
        self,
        x: torch.Tensor,
        position_ids: torch.Tensor | None = None,
        attn_mask: torch.Tensor | None = None,
        cache: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> torch.Tensor:
        seen = {"position_ids": position_ids, "attn_mask": attn_mask, "cache": cache}
        if not self.pre_norm:
            x = self.ln_1(x + self.attn(x, **seen))
            return self.ln_2(x + self.mlp(x))
        x = x + self.attn(self.ln_1(x), **seen)
        return x + self.mlp(self.ln_2(x))
