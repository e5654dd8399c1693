"""``GPTModule``: next-token language modelling with random-LTD in the middle layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch

from lightning_ltd.checks.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, checked
from lightning_ltd.models import GPT, GPTConfig
from lightning_ltd.models.compile import CompileMode
from lightning_ltd.modules.objectives import NextTokenModule
from lightning_ltd.modules.optim import Betas
from lightning_ltd.pretrained.convert import gpt_to_hf, read_hf_gpt2
from lightning_ltd.pretrained.io import save_hf_directory

BYTES = 256
"""The vocabulary when neither the module nor the data gives one: bytes."""


class GPTModule(NextTokenModule):
    """A GPT trained on ``[B, T + 1]`` token blocks (inputs and shifted targets).

    Args are those of ``GPTConfig`` plus the optimizer's (AdamW), ``seed`` (kept indices are a
    pure function of it, the rank and the step) and ``compile`` / ``compile_mode``
    (``torch.compile`` of the whole model, see ``RandomLTDModule.configure_model``).
    """

    @checked
    def __init__(
        self,
        vocab_size: PositiveInt | None = None,
        block_size: PositiveInt = 256,
        n_layer: PositiveInt = 6,
        n_head: PositiveInt = 4,
        n_embd: PositiveInt = 128,
        dropout: Fraction = 0.0,
        bias: bool = True,
        position: Literal["learned", "rotary"] = "learned",
        rotary_base: PositiveFloat = 10000.0,
        ltd_layers: Sequence[int] | None = None,
        activation_checkpointing: bool = False,
        lr: PositiveFloat = 3e-3,
        weight_decay: NonNegativeFloat = 0.1,
        betas: Betas = (0.9, 0.95),
        seed: Seed = 0,
        pretrained: str | None = None,
        compile: bool = False,
        compile_mode: CompileMode | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if vocab_size is None:  # train.py passes the data's; alone: bytes
            self.hparams["vocab_size"] = BYTES
        arch = self.architecture(
            "vocab_size", "block_size", "n_layer", "n_head", "n_embd", "bias", "position", layer_norm_eps=1e-5
        )
        weights = self.adopt_pretrained(arch, pretrained, read_hf_gpt2)  # config.json decides the architecture
        self.build_model(GPT, GPTConfig, arch, weights, dropout=dropout, rotary_base=rotary_base)
        self.add_metrics()

    def save_pretrained(self, path: str | Path) -> Path:
        """Write a directory that ``transformers.GPT2LMHeadModel.from_pretrained`` loads."""
        arch = {**dataclasses.asdict(self.model.config)}
        weights, config = gpt_to_hf(self.model.state_dict(), arch)
        return save_hf_directory(path, config, weights)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)
