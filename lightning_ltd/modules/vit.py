"""``ViTModule``: image classification with random-LTD on patch tokens."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics import MeanMetric
from torchmetrics.classification import MulticlassAccuracy

from lightning_ltd.checks.schema import Fraction, NonNegativeFloat, PositiveFloat, PositiveInt, Seed, checked
from lightning_ltd.models import ViT, ViTConfig
from lightning_ltd.models.compile import CompileMode
from lightning_ltd.modules.base import RandomLTDModule, StepOutput
from lightning_ltd.modules.optim import Betas, OptimizerName
from lightning_ltd.pretrained.convert import read_timm_vit, vit_to_timm
from lightning_ltd.pretrained.io import save_weight_file

Batch = tuple[torch.Tensor, torch.Tensor]


class ViTModule(RandomLTDModule):
    """ViT trained on ``(images [B, C, H, W], labels [B])``; logs ``val/loss`` and ``val/acc``.

    Args are those of ``ViTConfig`` plus the optimizer's (AdamW's ``lr``, ``weight_decay``,
    ``betas``; ``optimizer="sgd"`` with ``momentum`` as the reference ViT finetuning uses),
    ``label_smoothing`` and ``seed`` (token dropping). ``protect_cls`` keeps [CLS] in every
    dropping layer (off by default, as in the paper). With ``pretrained`` (a timm state dict)
    the architecture comes from the file; ``num_classes`` None keeps its head, another number
    gets a freshly initialised head.
    """

    objective = "images"  # the batches it trains on (data modules that serve several ask)
    validation_metrics = ("val/loss", "val/acc")  # what validation_step logs (monitors are checked against it)

    @checked
    def __init__(
        self,
        image_size: PositiveInt = 32,
        patch_size: PositiveInt = 4,
        in_channels: PositiveInt = 1,
        num_classes: PositiveInt | None = None,
        n_layer: PositiveInt = 6,
        n_head: PositiveInt = 4,
        n_embd: PositiveInt = 128,
        dropout: Fraction = 0.0,
        layer_norm_eps: PositiveFloat = 1e-6,
        protect_cls: bool = False,
        ltd_layers: Sequence[int] | None = None,
        activation_checkpointing: bool = False,
        lr: PositiveFloat = 1e-3,
        weight_decay: NonNegativeFloat = 0.05,
        betas: Betas = (0.9, 0.999),
        optimizer: OptimizerName = "adamw",
        momentum: Fraction = 0.9,
        label_smoothing: Fraction = 0.0,
        seed: Seed = 0,
        pretrained: str | None = None,
        pretrained_head_size: PositiveInt = 64,
        compile: bool = False,
        compile_mode: CompileMode | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        names = ("image_size", "patch_size", "in_channels", "n_layer", "n_head", "n_embd", "layer_norm_eps")
        arch = self.architecture(*names, num_classes=10 if num_classes is None else num_classes)
        weights = self.adopt_pretrained(arch, pretrained, lambda path: read_timm_vit(path, pretrained_head_size))
        if weights is not None and num_classes is not None and num_classes != arch["num_classes"]:
            # finetuning on other classes: a fresh head, as timm.create_model(num_classes=...) does
            weights = {k: v for k, v in weights.items() if not k.startswith("head.")}
            arch["num_classes"] = self.hparams["num_classes"] = num_classes
        config = self.build_model(ViT, ViTConfig, arch, None, dropout=dropout, protect_cls=protect_cls)
        self.val_loss = MeanMetric()
        self.val_acc = MulticlassAccuracy(num_classes=config.num_classes, average="micro")
        if weights is not None:
            if "head.weight" not in weights:  # keep the new head's initialisation
                weights = {**weights, **{f"head.{k}": v for k, v in self.model.head.state_dict().items()}}
            self.load_pretrained_weights(weights, str(pretrained))

    def save_pretrained(self, path: str | Path) -> Path:
        """Write a timm state dict (``.safetensors`` or ``.pth``) for ``timm.create_model(...)``."""
        return save_weight_file(path, vit_to_timm(self.model.state_dict()))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def token_shape(self, batch: Batch) -> tuple[int, int]:
        return int(batch[0].shape[0]), self.max_seq_len

    def model_step(self, batch: Batch) -> StepOutput:
        """Classification loss (with ``label_smoothing``): the training objective."""
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
        return StepOutput(loss, logits, labels)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        """Logs ``val/loss`` (plain cross-entropy, no smoothing) and ``val/acc``."""
        _, logits, labels = self.model_step(batch)
        self.val_loss.update(F.cross_entropy(logits, labels), weight=len(labels))
        self.val_acc.update(logits, labels)
        self.log("val/loss", self.val_loss, prog_bar=True)
        self.log("val/acc", self.val_acc, prog_bar=True)
