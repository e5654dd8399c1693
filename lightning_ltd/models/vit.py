"""Vision transformer (timm's layout: ``patch_embed.proj``, ``cls_token``, ``pos_embed``,
``blocks``, ``norm``, ``head``); middle blocks drop patch tokens, and [CLS] too unless
``protect_cls`` is set."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from lightning_ltd.checks.schema import PositiveFloat, PositiveInt
from lightning_ltd.models.base import LTDTransformer, TransformerConfig, init_normal
from lightning_ltd.models.transformer import Block


@dataclass
class ViTConfig(TransformerConfig):
    """Architecture of a ViT with a [CLS] token and learned positions."""

    image_size: PositiveInt = 32
    patch_size: PositiveInt = 4
    in_channels: PositiveInt = 1
    num_classes: PositiveInt = 10
    layer_norm_eps: PositiveFloat = 1e-6
    protect_cls: bool = False

    def extra_problems(self, sizes_valid: bool) -> list[str]:
        if sizes_valid and self.image_size % self.patch_size:
            return [f"image_size={self.image_size} must be divisible by patch_size={self.patch_size}"]
        return []

    @property
    def num_patches(self) -> int:
        """Patches per image (the sequence length, [CLS] aside)."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def seq_len(self) -> int:
        """Tokens per image: the patches plus [CLS]."""
        return self.num_patches + 1


class PatchEmbed(nn.Module):
    def __init__(self, c: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(c.in_channels, c.n_embd, kernel_size=c.patch_size, stride=c.patch_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(images).flatten(2).transpose(1, 2)  # (B, N, C)


class ViT(LTDTransformer):
    """``forward(images [B, C, H, W]) -> logits [B, num_classes]`` from the final [CLS] token."""

    config: ViTConfig

    def __init__(self, config: ViTConfig, seed: int = 0) -> None:
        super().__init__(config, seed, num_protected=1 if config.protect_cls else 0)
        c = config
        self.patch_embed = PatchEmbed(c)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.n_embd))
        self.pos_embed = nn.Parameter(torch.zeros(1, c.seq_len, c.n_embd))
        self.pos_drop = nn.Dropout(c.dropout)
        self.blocks = self.build_layers(
            lambda: Block(
                c.n_embd, c.n_head, dropout=c.dropout, causal=False, layer_norm_eps=c.layer_norm_eps, activation="gelu"
            )
        )
        self.norm = nn.LayerNorm(c.n_embd, eps=c.layer_norm_eps)
        self.head = nn.Linear(c.n_embd, c.num_classes)
        self.apply(init_normal)
        nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.cls_token, std=1e-6)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        c = self.config
        if tuple(images.shape[1:]) != (c.in_channels, c.image_size, c.image_size):
            raise ValueError(
                f"images must be [B, {c.in_channels}, {c.image_size}, {c.image_size}], got {tuple(images.shape)}"
            )
        patches = self.patch_embed(images)
        x = torch.cat([self.cls_token.expand(patches.shape[0], -1, -1), patches], dim=1)
        x = self.pos_drop(x + self.pos_embed)  # positions travel with the tokens
        x = self.run_layers(self.blocks, x)
        return self.head(self.norm(x)[:, 0])

    def training_flops(self, batch_size: int, seq_len: int, keep: int | None) -> int:
        """Matmul FLOPs of one training step: 3 x forward for blocks and head, 2 x for the patch
        projection (the images need no gradient, only its weight does)."""
        c = self.config
        patchify = 2 * batch_size * c.num_patches * c.n_embd * c.in_channels * c.patch_size**2
        head = 2 * batch_size * c.n_embd * c.num_classes
        return 2 * patchify + 3 * (self.layers_forward_flops(batch_size, seq_len, keep) + head)
