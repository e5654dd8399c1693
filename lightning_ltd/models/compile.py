"""``torch.compile`` for random-LTD models: compile each block, with static shapes.

A dropping block sees ``keep`` tokens, so each distinct kept length is one compiled graph.
The MSLG schedule only takes values on its granularity grid, so a whole schedule needs at most
``(max - min) / granularity + 2`` graphs per block type (plus the full-length and evaluation
ones); ``allow_recompiles`` raises dynamo's recompile limit to that, so compilation never
silently falls back to eager half-way through the ramp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from lightning_ltd.models.transformer import Block


def compile_blocks(model: nn.Module, backend: str | Callable[..., Any] = "inductor") -> int:
    """Compile every ``Block`` in place (parameter names are unchanged); returns how many."""
    blocks = [m for m in model.modules() if isinstance(m, Block)]
    for block in blocks:
        block.compile(backend=backend, dynamic=False)
    return len(blocks)


def is_compiled(model: nn.Module) -> bool:
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules())


def allow_recompiles(distinct_shapes: int) -> None:
    """Let dynamo keep one graph per kept length (plus full length and eval, with margin)."""
    needed = 2 * distinct_shapes + 4  # training and evaluation variants of each shape
    config = torch._dynamo.config
    for name in ("recompile_limit", "cache_size_limit"):
        if hasattr(config, name) and getattr(config, name) < needed:
            setattr(config, name, needed)
