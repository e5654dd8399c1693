"""Plain ``nn.Module`` transformers sharing one block; middle blocks are wrapped in RandomLTD."""

from lightning_ltd.models.base import LTDTransformer, TransformerConfig
from lightning_ltd.models.bert import BERT, BERTConfig
from lightning_ltd.models.gpt import GPT, GPTConfig
from lightning_ltd.models.transformer import Block, RotaryEmbedding, SelfAttention, block_forward_flops
from lightning_ltd.models.vit import ViT, ViTConfig

__all__ = [
    "BERT",
    "BERTConfig",
    "Block",
    "GPT",
    "GPTConfig",
    "LTDTransformer",
    "RotaryEmbedding",
    "SelfAttention",
    "TransformerConfig",
    "ViT",
    "ViTConfig",
    "block_forward_flops",
]
