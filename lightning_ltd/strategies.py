"""Strategy factories for configs: Hydra cannot put a class into FSDP's wrap policy by name."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.strategies import FSDPStrategy

from lightning_ltd.models.transformer import Block


def fsdp_by_block(**kwargs: Any) -> FSDPStrategy:
    """FSDP with one unit per transformer ``Block`` (inside RandomLTD wrappers too)."""
    return FSDPStrategy(auto_wrap_policy={Block}, **kwargs)
