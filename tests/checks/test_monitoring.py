"""Monitors and summary metrics are checked against the validation metrics a module declares."""

from __future__ import annotations

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import RunSummary
from lightning_ltd.checks.monitoring import monitored_metric_problems
from lightning_ltd.modules import BERTModule, GPTModule, ViTModule


def validated_metrics(module: L.LightningModule, batch) -> set[str]:
    trainer = L.Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.validate(module, DataLoader([batch], batch_size=None), verbose=False)
    return set(trainer.callback_metrics)


def test_each_module_declares_what_its_validation_logs():
    """The declaration is what ``validation_step`` logs: a validation run's callback metrics."""
    gpt = GPTModule(n_layer=2, n_embd=32, n_head=2, vocab_size=64, block_size=16)
    assert validated_metrics(gpt, torch.randint(0, 64, (2, 17))) == set(gpt.validation_metrics)
    bert = BERTModule(n_layer=2, n_embd=32, n_head=2, vocab_size=64, block_size=16)
    ids = torch.randint(5, 64, (2, 16))
    labels = torch.where(torch.rand(2, 16) < 0.3, ids, torch.full_like(ids, -100))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    assert validated_metrics(bert, batch) == set(bert.validation_metrics) == {"val/loss", "val/mlm_acc"}
    vit = ViTModule(image_size=8, patch_size=4, in_channels=1, num_classes=3, n_layer=2, n_embd=32, n_head=2)
    images = (torch.randn(2, 1, 8, 8), torch.tensor([0, 2]))
    assert validated_metrics(vit, images) == set(vit.validation_metrics) == {"val/loss", "val/acc"}


def test_unknown_validation_metrics_are_named_and_others_pass():
    callbacks = {
        "best": ModelCheckpoint(monitor="val_loss"),
        "stop": EarlyStopping(monitor="val/ppl"),
        "train": ModelCheckpoint(monitor="train/loss"),  # a training metric: judged by Lightning at its save
        "summary": RunSummary(metrics=["val/loss", "val/acc"]),
        "default_summary": RunSummary(),
    }
    gpt = GPTModule(n_layer=2, n_embd=32, n_head=2, vocab_size=64, block_size=16)
    assert monitored_metric_problems(callbacks, gpt) == [
        "callbacks.best.monitor: GPTModule logs no 'val_loss' (its validation metrics: val/loss, val/ppl)",
        "callbacks.summary.metrics: GPTModule logs no 'val/acc' (its validation metrics: val/loss, val/ppl)",
    ]


def test_a_module_that_declares_nothing_is_not_checked():
    assert monitored_metric_problems({"best": ModelCheckpoint(monitor="val/anything")}, L.LightningModule()) == []


def test_the_default_summary_reports_the_module_s_metrics():
    summary = RunSummary()
    summary.setup(None, BERTModule(n_layer=2, n_embd=32, n_head=2, vocab_size=64, block_size=16), "fit")
    assert summary.metrics == ("val/loss", "val/mlm_acc")
    summary.setup(None, L.LightningModule(), "fit")
    assert summary.metrics == ("val/loss",)


class GPTWithAccuracy(GPTModule):
    """The README's subclass: its own ``validation_step`` logs ``val/top1`` beside the parent's."""

    def validation_step(self, batch, batch_idx):
        super().validation_step(batch, batch_idx)
        self.log("val/top1", 0.5)


class GPTDeclaringAccuracy(GPTWithAccuracy):
    validation_metrics = ("val/loss", "val/ppl", "val/top1")


def test_a_subclass_that_logs_more_is_checked_only_once_it_declares_it():
    sizes = {"n_layer": 2, "n_embd": 32, "n_head": 2, "vocab_size": 64, "block_size": 16}
    watched = {"best": ModelCheckpoint(monitor="val/top1")}
    assert monitored_metric_problems(watched, GPTWithAccuracy(**sizes)) == []
    assert monitored_metric_problems(watched, GPTDeclaringAccuracy(**sizes)) == []
    assert monitored_metric_problems({"best": ModelCheckpoint(monitor="val/top5")}, GPTDeclaringAccuracy(**sizes))
    summary = RunSummary()
    summary.setup(None, GPTWithAccuracy(**sizes), "fit")  # reports what it finds of the parent's
    assert summary.metrics == ("val/loss", "val/ppl")
