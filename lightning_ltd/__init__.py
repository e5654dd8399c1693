"""lightning-ltd: random and layerwise token dropping (random-LTD) for Lightning transformers.

Everything public is importable from here:

- your own model or a Hugging Face / LitGPT one: ``apply_random_ltd``, ``verify_random_ltd``,
  ``RandomLTD``, ``TokenRouter``, ``next_plan``, ``register_block_rules``;
- LightningModules: ``GPTModule``, ``BERTModule``, ``ViTModule``, ``HFCausalLMModule`` and
  ``HFMaskedLMModule`` (any local Hugging Face folder), ``LitGPTModule`` and their base ``RandomLTDModule``
  (with ``StepOutput``);
- plain networks: ``GPT``, ``BERT``, ``ViT`` and their configs;
- callbacks: ``RandomLTDScheduler`` (kept length and LayerToken LR), ``RunSummary``,
  ``TokenThroughputMonitor``, ``NonFiniteLossGuard``;
- schedules: ``LayerTokenLR``, ``StepLR``, ``LayerTokenLRScheduler`` (a torch LR scheduler),
  ``mslg_keep``, ``layer_tokens_per_step``;
- data: ``TextDataModule``, ``MLMDataModule``, ``TokensDataModule``, ``DigitsDataModule``,
  ``ImageFolderDataModule``;
- Hugging Face ``Trainer`` and TRL: ``lightning_ltd.integrations.RandomLTDCallback``;
- the command line: ``train`` (a composed config -> a run; ``lightning-ltd-train`` on the shell).
"""

from lightning_ltd.callbacks import (
    NonFiniteLossError,
    NonFiniteLossGuard,
    RandomLTDScheduler,
    RunSummary,
    TokenThroughputMonitor,
)
from lightning_ltd.cli import ConfigError, train
from lightning_ltd.console import quiet_lightning
from lightning_ltd.data import (
    DigitsDataModule,
    ImageFolderDataModule,
    MLMDataModule,
    TextDataModule,
    TokensDataModule,
)
from lightning_ltd.ltd import (
    LayerTokenLR,
    LayerTokenLRScheduler,
    RandomLTD,
    StepLR,
    TokenRouter,
    apply_random_ltd,
    layer_tokens_per_step,
    mslg_keep,
    next_plan,
    register_block_rules,
    verify_random_ltd,
)
from lightning_ltd.models import BERT, GPT, BERTConfig, GPTConfig, ViT, ViTConfig
from lightning_ltd.modules import (
    BERTModule,
    GPTModule,
    HFCausalLMModule,
    HFMaskedLMModule,
    LitGPTModule,
    RandomLTDModule,
    StepOutput,
    ViTModule,
)

__all__ = [
    "BERT",
    "BERTConfig",
    "BERTModule",
    "ConfigError",
    "DigitsDataModule",
    "GPT",
    "GPTConfig",
    "GPTModule",
    "HFCausalLMModule",
    "HFMaskedLMModule",
    "ImageFolderDataModule",
    "LayerTokenLR",
    "LayerTokenLRScheduler",
    "LitGPTModule",
    "MLMDataModule",
    "NonFiniteLossError",
    "NonFiniteLossGuard",
    "RandomLTD",
    "RandomLTDModule",
    "RandomLTDScheduler",
    "RunSummary",
    "StepLR",
    "StepOutput",
    "TextDataModule",
    "TokenRouter",
    "TokenThroughputMonitor",
    "TokensDataModule",
    "ViT",
    "ViTConfig",
    "ViTModule",
    "apply_random_ltd",
    "layer_tokens_per_step",
    "mslg_keep",
    "next_plan",
    "register_block_rules",
    "train",
    "verify_random_ltd",
]
__version__ = "0.1.0"

quiet_lightning()  # Lightning's advert and its own deprecation notes, dropped in library use too
