"""``BERTModule``: masked-LM pretraining with random-LTD; padding is masked in every layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import torch

from lightning_ltd.checks.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, checked
from lightning_ltd.data.vocabulary import MLM_VOCAB_SIZE
from lightning_ltd.models import BERT, BERTConfig
from lightning_ltd.models.compile import CompileMode
from lightning_ltd.modules.objectives import MaskedLMModule
from lightning_ltd.modules.optim import Betas
from lightning_ltd.pretrained.convert import bert_to_hf, read_hf_bert
from lightning_ltd.pretrained.io import save_hf_directory


class BERTModule(MaskedLMModule):
    """BERT trained on batches of ``input_ids``, ``attention_mask`` and ``labels`` (-100: no target).

    The loss is the cross-entropy over target positions only; ``val/mlm_acc`` is the accuracy
    there. Args are those of ``BERTConfig`` plus AdamW's and ``seed`` (token dropping).
    """

    @checked
    def __init__(
        self,
        vocab_size: PositiveInt | None = None,
        block_size: PositiveInt = 128,
        n_layer: PositiveInt = 4,
        n_head: PositiveInt = 4,
        n_embd: PositiveInt = 128,
        type_vocab_size: PositiveInt = 2,
        dropout: Fraction = 0.1,
        pre_norm: bool = False,
        layer_norm_eps: PositiveFloat = 1e-12,
        ltd_layers: Sequence[int] | None = None,
        activation_checkpointing: bool = False,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.01,
        betas: Betas = (0.9, 0.98),
        seed: Seed = 0,
        pretrained: str | None = None,
        compile: bool = False,
        compile_mode: CompileMode | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if vocab_size is None:  # train.py passes the data's; alone: bytes + the four specials
            self.hparams["vocab_size"] = MLM_VOCAB_SIZE
        names = ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "type_vocab_size", "pre_norm")
        arch = self.architecture(*names, "layer_norm_eps")
        weights = self.adopt_pretrained(arch, pretrained, read_hf_bert)  # config.json decides the architecture
        config = self.build_model(BERT, BERTConfig, arch, weights, dropout=dropout)
        self.add_metrics(config.vocab_size)  # sized from the built model: a pretrained folder's vocabulary wins

    def save_pretrained(self, path: str | Path) -> Path:
        """Write a directory that ``transformers.BertForMaskedLM.from_pretrained`` loads."""
        weights, config = bert_to_hf(self.model.state_dict(), dataclasses.asdict(self.model.config))
        return save_hf_directory(path, config, weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids, attention_mask)
