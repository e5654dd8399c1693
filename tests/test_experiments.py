"""Every experiment composes, and its objects instantiate (large models on the meta device)."""

from pathlib import Path

import hydra
import pytest
import torch

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.ltd import LayerTokenLR
from lightning_ltd.modules import GPTModule
from tests.conftest import CONF_DIR, compose_train

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
CPU = ["trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision=32-true"]


def test_there_are_experiments():
    assert {"gpt3_350m", "gpt3_1.3b"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("x")
    cfg = compose_train(tmp_path, f"experiment={name}", f"data.path={corpus}", *CPU, tiny=False)
    with torch.device("meta"):
        module = hydra.utils.instantiate(cfg.model)
    lr = hydra.utils.instantiate(cfg.lr)
    scheduler = hydra.utils.instantiate(cfg.ltd, lr=lr)
    hydra.utils.instantiate(cfg.data)
    trainer = hydra.utils.instantiate(cfg.trainer, logger=False, callbacks=[scheduler])
    assert isinstance(module, GPTModule) and isinstance(scheduler, RandomLTDScheduler)
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
        assert (
            {"gpt3_350m": 0.3e9, "gpt3_1.3b": 1.2e9}[name] < n_params < {"gpt3_350m": 0.45e9, "gpt3_1.3b": 1.5e9}[name]
        )
