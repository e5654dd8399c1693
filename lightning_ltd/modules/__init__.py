"""LightningModules: training and validation steps, metrics and optimizers."""

from lightning_ltd.modules.base import RandomLTDModule, StepOutput
from lightning_ltd.modules.bert import BERTModule
from lightning_ltd.modules.gpt import GPTModule
from lightning_ltd.modules.hf import HFCausalLMModule, HFMaskedLMModule, HuggingFaceModel
from lightning_ltd.modules.litgpt import LitGPTModule
from lightning_ltd.modules.vit import ViTModule

__all__ = [
    "BERTModule",
    "GPTModule",
    "HFCausalLMModule",
    "HFMaskedLMModule",
    "HuggingFaceModel",
    "LitGPTModule",
    "RandomLTDModule",
    "StepOutput",
    "ViTModule",
]
