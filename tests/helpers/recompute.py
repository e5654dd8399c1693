"""Activation checkpointing around a whole block, as a user would put it (kept free of
transformers imports: the LitGPT environment uses it too)."""

import functools

from torch import nn
from torch.utils.checkpoint import checkpoint


class Recomputed(nn.Module):
    """``torch.utils.checkpoint`` around ``inner`` (a wrapped block): its forward runs again in backward."""

    def __init__(self, inner: nn.Module, use_reentrant: bool) -> None:
        super().__init__()
        self.inner, self.use_reentrant = inner, use_reentrant

    def forward(self, *args, **kwargs):
        return checkpoint(functools.partial(self.inner, **kwargs), *args, use_reentrant=self.use_reentrant)
