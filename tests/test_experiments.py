"""Every experiment composes, and its objects instantiate (large models on the meta device)."""

from pathlib import Path

import hydra
import pytest
import torch
from omegaconf import OmegaConf

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.cli import train
from lightning_ltd.ltd import LayerTokenLR
from lightning_ltd.modules import RandomLTDModule
from tests.conftest import CONF_DIR, QUICK, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
CPU = ["trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision=32-true"]


def test_there_are_experiments():
    assert {"gpt3_350m", "gpt3_1.3b", "vit_digits", "bert_mlm", "bert_large", "vit_b16"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("x")
    cfg = compose_train(tmp_path, f"experiment={name}", *CPU, tiny=False)
    if OmegaConf.is_missing(cfg.data, "path"):
        cfg.data.path = str(corpus)
    with torch.device("meta"):
        module = hydra.utils.instantiate(cfg.model)
    lr = hydra.utils.instantiate(cfg.lr)
    scheduler = hydra.utils.instantiate(cfg.ltd, lr=lr)
    hydra.utils.instantiate(cfg.data)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[scheduler])
    assert isinstance(module, RandomLTDModule) and isinstance(scheduler, RandomLTDScheduler)
    assert trainer.max_steps == cfg.trainer.max_steps
    if name.startswith("gpt3_"):
        config = module.model.config
        assert (config.n_layer, config.block_size, config.ltd_layers) == (24, 2048, list(range(1, 23)))
        expected_width = {"gpt3_350m": 1024, "gpt3_1.3b": 2048}[name]
        assert config.n_embd == expected_width
        assert (scheduler.min_keep, scheduler.max_keep, scheduler.granularity) == (128, 2048, 16)
        assert scheduler.keep_at(100_000) == 1088 and scheduler.keep_at(200_000) == 2048
        assert isinstance(lr, LayerTokenLR) and lr.decay == "cosine"
        n_params = sum(p.numel() for p in module.parameters())
        assert {"gpt3_350m": 0.3e9, "gpt3_1.3b": 1.2e9}[name] < n_params
        assert (
            {"gpt3_350m": 0.3e9, "gpt3_1.3b": 1.2e9}[name] < n_params < {"gpt3_350m": 0.45e9, "gpt3_1.3b": 1.5e9}[name]
        )
    if name == "bert_large":
        c = module.model.config
        assert (c.n_layer, c.n_embd, c.block_size, c.ltd_layers) == (24, 1024, 512, list(range(1, 23)))
        assert (scheduler.min_keep, scheduler.max_keep, scheduler.granularity) == (128, 512, 16)
    if name == "vit_b16":
        c = module.model.config
        assert (c.n_layer, c.n_embd, c.image_size, c.patch_size, c.seq_len) == (12, 768, 224, 16, 197)
        assert c.ltd_layers == list(range(1, 11))
        assert (scheduler.min_keep, scheduler.max_keep, scheduler.ramp_steps, scheduler.granularity) == (
            32,
            197,
            3910,
            8,
        )
        assert scheduler.keep_at(0) == 32 and scheduler.keep_at(3910) == 197


def test_vit_digits_smoke(tmp_path):
    overrides = [
        "model.n_layer=3",
        "model.n_embd=32",
        "ltd.ramp_steps=200",
        "lr.warmup_steps=20",
        *QUICK,
        "trainer.max_steps=300",
        "trainer.val_check_interval=150",
    ]
    summary = train(compose_train(tmp_path, "experiment=vit_digits", *overrides, tiny=False))
    assert summary["steps"] == 300 and 0 < summary["theoretical_saving"] < 1
    assert summary["val/acc"] > summary["val/acc_start"] + 0.5
    assert summary["val/loss"] < summary["val/loss_start"]


def test_bert_mlm_smoke(tmp_path):
    overrides = [
        "model.n_layer=3",
        "model.n_embd=32",
        "data.max_bytes=100000",
        "data.batch_size=16",
        "ltd.ramp_steps=20",
        "lr.warmup_steps=5",
        *QUICK,
        "trainer.max_steps=60",
        "trainer.val_check_interval=30",
    ]
    summary = train(compose_train(tmp_path, "experiment=bert_mlm", *overrides, tiny=False))
    assert summary["steps"] == 60 and 0 < summary["theoretical_saving"] < 1
    assert summary["val/loss"] < summary["val/loss_start"] - 1.0
    assert summary["val/mlm_acc"] > summary["val/mlm_acc_start"]
