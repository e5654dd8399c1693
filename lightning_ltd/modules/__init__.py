"""LightningModules: training and validation steps, metrics and optimizers."""

from lightning_ltd.modules.base import RandomLTDModule
from lightning_ltd.modules.gpt import GPTModule

__all__ = ["GPTModule", "RandomLTDModule"]
