"""``BERTModule``: masked-LM pretraining with random-LTD; padding is masked in every layer."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_ltd.data.mlm import IGNORE_INDEX, MLM_VOCAB_SIZE
from lightning_ltd.models import BERT, BERTConfig
from lightning_ltd.modules.base import RandomLTDModule, StepOutput
from lightning_ltd.pretrained.convert import bert_to_hf, read_hf_bert
from lightning_ltd.pretrained.io import save_hf_directory

Batch = dict[str, torch.Tensor]


class BERTModule(RandomLTDModule):
    """BERT trained on batches of ``input_ids``, ``attention_mask`` and ``labels`` (-100: no target).

    The loss is the cross-entropy over target positions only; ``val/mlm_acc`` is the accuracy
    there. Args are those of ``BERTConfig`` plus AdamW's and ``seed`` (token dropping).
    """

    objective = "mlm"  # the batches it trains on (data modules that serve several ask)

    def __init__(
        self,
        vocab_size: int = MLM_VOCAB_SIZE,
        block_size: int = 128,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        type_vocab_size: int = 2,
        dropout: float = 0.1,
        pre_norm: bool = False,
        layer_norm_eps: float = 1e-12,
        ltd_layers: Sequence[int] | None = None,
        activation_checkpointing: bool = False,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: Sequence[float] = (0.9, 0.98),
        seed: int = 0,
        pretrained: str | None = None,
        compile: bool = False,
        compile_mode: str | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.check_settings()
        arch = {
            "vocab_size": vocab_size,
            "block_size": block_size,
            "n_layer": n_layer,
            "n_head": n_head,
            "n_embd": n_embd,
            "type_vocab_size": type_vocab_size,
            "pre_norm": pre_norm,
            "layer_norm_eps": layer_norm_eps,
        }
        weights = self.adopt_pretrained(arch, pretrained, read_hf_bert)  # config.json decides the architecture
        config = BERTConfig(
            **arch,
            dropout=dropout,
            ltd_layers=None if ltd_layers is None else list(ltd_layers),
            activation_checkpointing=activation_checkpointing,
        )
        self.model = BERT(config, seed=seed)
        self.num_layers = config.n_layer
        self.max_seq_len = config.block_size
        if weights is not None:
            self.load_pretrained_weights(weights, str(pretrained))
        self.val_loss = MeanMetric()
        # sized from the built model: a pretrained folder's vocabulary replaces the argument
        self.val_mlm_acc = MulticlassAccuracy(num_classes=config.vocab_size, average="micro", ignore_index=IGNORE_INDEX)

    @classmethod
    def from_pretrained(cls, path: str | Path, **kwargs: Any) -> BERTModule:
        """A BERTModule from a local Hugging Face BERT ``save_pretrained`` directory (no network)."""
        return cls(pretrained=str(path), **kwargs)

    def save_pretrained(self, path: str | Path) -> Path:
        """Write a directory that ``transformers.BertForMaskedLM.from_pretrained`` loads."""
        weights, config = bert_to_hf(self.model.state_dict(), dataclasses.asdict(self.model.config))
        return save_hf_directory(path, config, weights)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(input_ids, attention_mask)

    def token_shape(self, batch: Batch) -> tuple[int, int]:
        rows, seq_len = batch["input_ids"].shape
        return int(rows), int(seq_len)

    def training_flops(self, rows: int, seq_len: int, keep: int | None) -> int:
        return self.model.training_flops(rows, seq_len, keep)

    def model_step(self, batch: Batch) -> StepOutput:
        """Masked-LM loss over the masked positions: what training and validation both run."""
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)
        return StepOutput(loss, logits, batch["labels"])

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        """Logs ``train/loss``."""
        loss = self.model_step(batch).loss
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Logs ``val/loss`` (weighted by masked tokens) and ``val/mlm_acc``."""
        loss, logits, labels = self.model_step(batch)
        self.val_loss.update(loss, weight=(labels != IGNORE_INDEX).sum())
        self.val_mlm_acc.update(logits.flatten(0, 1), labels.flatten())
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/mlm_acc", self.val_mlm_acc, prog_bar=True)
