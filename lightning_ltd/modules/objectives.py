"""The two language-modelling objectives, each written once for every network that trains on it
(our GPT and BERT, and any Hugging Face causal or masked LM): batches, loss, metrics."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_ltd.data.mlm import IGNORE_INDEX
from lightning_ltd.modules.base import RandomLTDModule, StepOutput

MaskedBatch = dict[str, torch.Tensor]


class ExpOfMean(MeanMetric):
    """``exp`` of a weighted mean, reduced over ranks as the mean is: perplexity from the
    token-weighted cross-entropy the loss already computed. (torchmetrics' ``Perplexity``
    repeats it through an fp32 softmax over ``[B * T, vocab]``: 3.3 GB at 8 x 2048 x 50k.)"""

    def compute(self) -> torch.Tensor:
        return torch.exp(super().compute())


class NextTokenModule(RandomLTDModule):
    """Next-token prediction on ``[B, T + 1]`` token blocks (inputs and shifted targets); the
    subclass's ``forward(idx [B, T])`` returns logits ``[B, T, vocab]``. Logs ``val/loss``
    (token-weighted) and ``val/ppl``."""

    objective = "lm"  # the batches it trains on (data modules that serve several ask)
    validation_metrics = ("val/loss", "val/ppl")  # what validation_step logs (monitors are checked against it)

    def add_metrics(self) -> None:
        """The validation metrics (call in ``__init__``)."""
        self.val_loss = MeanMetric()
        self.val_ppl = ExpOfMean()

    def token_shape(self, batch: torch.Tensor) -> tuple[int, int]:
        return int(batch.shape[0]), int(batch.shape[1]) - 1

    def truncate(self, batch: torch.Tensor, length: int) -> torch.Tensor:
        """The first ``length`` inputs of each block and their targets (``length + 1`` tokens)."""
        return batch[:, : length + 1]

    def model_step(self, batch: torch.Tensor) -> StepOutput:
        """Next-token loss of a ``[B, T + 1]`` block: what training and validation both run."""
        inputs, targets = batch[:, :-1], batch[:, 1:]
        logits = self(inputs)
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return StepOutput(loss, logits, targets)

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        """Logs ``val/loss`` (token-weighted) and ``val/ppl``."""
        loss, _, targets = self.model_step(batch)
        self.val_loss.update(loss, weight=targets.numel())
        self.val_ppl.update(loss, weight=targets.numel())
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/ppl", self.val_ppl)


class MaskedLMModule(RandomLTDModule):
    """Masked-LM on batches of ``input_ids``, ``attention_mask`` and ``labels`` (-100: no target);
    the subclass's ``forward(input_ids, attention_mask)`` returns logits ``[B, T, vocab]``. The
    loss is the cross-entropy over target positions only; logs ``val/loss`` (weighted by masked
    tokens) and ``val/mlm_acc``, the accuracy there."""

    objective = "mlm"  # the batches it trains on (data modules that serve several ask)
    validation_metrics = ("val/loss", "val/mlm_acc")  # what validation_step logs (monitors are checked against it)

    def add_metrics(self, vocab_size: int) -> None:
        """The validation metrics (call in ``__init__``, sized from the built model)."""
        self.val_loss = MeanMetric()
        self.val_mlm_acc = MulticlassAccuracy(num_classes=vocab_size, average="micro", ignore_index=IGNORE_INDEX)

    def token_shape(self, batch: MaskedBatch) -> tuple[int, int]:
        rows, seq_len = batch["input_ids"].shape
        return int(rows), int(seq_len)

    def truncate(self, batch: MaskedBatch, length: int) -> MaskedBatch:
        """Every row-aligned tensor of the batch (ids, mask, labels) cut to ``length`` positions;
        a masked position cut off is no target any more."""
        return {key: value[:, :length] if value.ndim >= 2 else value for key, value in batch.items()}

    def model_step(self, batch: MaskedBatch) -> StepOutput:
        """Masked-LM loss over the masked positions: what training and validation both run."""
        logits = self(batch["input_ids"], batch["attention_mask"])
        loss = F.cross_entropy(logits.flatten(0, 1), batch["labels"].flatten(), ignore_index=IGNORE_INDEX)
        return StepOutput(loss, logits, batch["labels"])

    def validation_step(self, batch: MaskedBatch, batch_idx: int) -> None:
        """Logs ``val/loss`` (weighted by masked tokens) and ``val/mlm_acc``."""
        loss, logits, labels = self.model_step(batch)
        self.val_loss.update(loss, weight=(labels != IGNORE_INDEX).sum())
        self.val_mlm_acc.update(logits.flatten(0, 1), labels.flatten())
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/mlm_acc", self.val_mlm_acc, prog_bar=True)
