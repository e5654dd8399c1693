"""Plain ``nn.Module`` transformers sharing one block; middle blocks are wrapped in RandomLTD."""

from lightning_ltd.models.gpt import GPT, GPTConfig
from lightning_ltd.models.transformer import Block, RotaryEmbedding, SelfAttention, block_forward_flops

__all__ = ["GPT", "GPTConfig", "Block", "RotaryEmbedding", "SelfAttention", "block_forward_flops"]
