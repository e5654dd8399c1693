"""Every experiment composes, and its objects instantiate (large models on the meta device)."""

import math
from pathlib import Path

import hydra
import pytest
import torch

from lightning_ltd.callbacks import RandomLTDScheduler
from lightning_ltd.checks.config import required_problems
from lightning_ltd.cli import train
from lightning_ltd.data.prepare import prepare
from lightning_ltd.ltd import LayerTokenLR, budget_saving, layer_tokens_per_step, mslg_keep, schedule_saving
from lightning_ltd.modules import GPTModule, RandomLTDModule, ViTModule
from lightning_ltd.pretrained.tiny import tiny_gpt2, tiny_llama, tiny_vit
from tests.conftest import CONF_DIR, QUICK, compose_train, make_tokenizer

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))
CPU = ["trainer.accelerator=cpu", "trainer.devices=1", "trainer.precision=32-true"]


def test_there_are_experiments():
    assert set(CHECKPOINTS) | {"gpt3_350m", "gpt3_1.3b", "vit_digits", "bert_mlm", "bert_large"} <= set(EXPERIMENTS)


def gpt2_shaped_checkpoint(path: Path) -> str:
    """GPT-2 small's depth and context (12 layers, 1024 positions) at a tiny width, with a tokenizer."""
    GPTModule(vocab_size=300, block_size=1024, n_layer=12, n_head=2, n_embd=16).save_pretrained(path)
    make_tokenizer(path, vocab_size=300)
    return str(path)


def vit_b16_shaped_checkpoint(path: Path) -> str:
    """ViT-B/16's depth and tokens (12 layers, 224 / 16 -> 197) at a tiny width, as a timm state dict."""
    module = ViTModule(image_size=224, patch_size=16, in_channels=3, num_classes=5, n_layer=12, n_head=1, n_embd=64)
    return str(module.save_pretrained(path / "vit.pth"))


CHECKPOINTS = {  # for the finetuning recipes, whose model.pretrained is mandatory
    "gpt2_finetune": gpt2_shaped_checkpoint,
    "gpt2_finetune_tiny": lambda path: str(tiny_gpt2(path)),
    "vit_b16_finetune": vit_b16_shaped_checkpoint,
    "vit_finetune_tiny": lambda path: str(tiny_vit(path / "vit.safetensors")),
    "llama_finetune": lambda path: str(tiny_llama(path)),
}


@pytest.mark.slow  # about 3 s
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_composes_and_instantiates(name, tmp_path: Path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("x" * 5000)
    cfg = compose_train(tmp_path, f"experiment={name}", *CPU, tiny=False)
    assert required_problems(cfg) == [
        f"{key} must be set (experiment needs it): add {key}=..." for key in cfg.required_keys
    ]
    if "data.path" in cfg.required_keys:
        cfg.data.path = str(corpus)
        if cfg.data._target_.endswith("TokensDataModule"):  # the GPT-3 and BERT-large recipes read shards
            prepare([str(corpus)], str(tmp_path / "shards"), progress=False)
            cfg.data.path = str(tmp_path / "shards")
    pretrained = "model.pretrained" in cfg.required_keys
    if pretrained:
        cfg.model.pretrained = CHECKPOINTS[name](tmp_path / "checkpoint")
    assert required_problems(cfg) == []
    with torch.device("cpu" if pretrained else "meta"):
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
        expected_width = 1024 if name == "gpt3_350m" else 2048
        assert config.n_embd == expected_width
        if scheduler.enabled:  # not in the baseline
            assert (scheduler.min_keep, scheduler.max_keep, scheduler.granularity) == (128, 2048, 16)
            ramp = scheduler.ramp_steps
            halfway = {200_000: 1088, 133_333: 1072, 100_000: 1088}[
                ramp
            ]  # DeepSpeed's fixed_linear: 128 + 1920 / 2, in 16s
            assert scheduler.keep_at(ramp // 2) == halfway and scheduler.keep_at(ramp) == 2048
        assert isinstance(lr, LayerTokenLR) and lr.decay == "cosine"
        n_params = sum(p.numel() for p in module.parameters())
        low, high = (0.3e9, 0.45e9) if name == "gpt3_350m" else (1.2e9, 1.5e9)
        assert low < n_params < high
    if name.startswith(("gpt3_", "bert_large")):  # BPE shards of GPT-2's vocabulary size
        assert cfg.data._target_ == "lightning_ltd.data.TokensDataModule" and cfg.model.vocab_size == 50304
    if name.startswith("bert_large"):
        c = module.model.config
        assert (c.n_layer, c.n_embd, c.block_size, c.ltd_layers) == (24, 1024, 512, list(range(1, 23)))
        if scheduler.enabled:
            assert (scheduler.min_keep, scheduler.max_keep, scheduler.granularity) == (128, 512, 16)
    if name == "gpt2_finetune":
        c = module.model.config
        assert (c.n_layer, c.block_size, c.ltd_layers) == (12, 1024, list(range(1, 11)))
        assert (scheduler.min_keep, scheduler.max_keep, scheduler.ramp_steps, scheduler.granularity) == (
            128,
            1024,
            400,
            8,
        )
    if name == "llama_finetune":
        assert type(module).__name__ == "HFCausalLMModule" and module.hparams.ltd_layers == [1, 2]
        assert (scheduler.min_keep, scheduler.ramp_steps, scheduler.granularity) == (32, 400, 8)
        assert cfg.data.tokenizer == cfg.model.pretrained  # the folder's own tokenizer
    if name == "vit_b16_finetune":
        c = module.model.config
        assert (c.n_layer, c.image_size, c.patch_size, c.seq_len, c.num_classes) == (12, 224, 16, 197, 5)
        assert c.ltd_layers == list(range(1, 11))
        assert (scheduler.min_keep, scheduler.max_keep, scheduler.ramp_steps, scheduler.granularity) == (
            32,
            197,
            3910,
            8,
        )
        assert scheduler.keep_at(0) == 32 and scheduler.keep_at(3910) == 197


@pytest.mark.slow
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
    assert summary["steps"] == 300 and 0 < summary["schedule_saving"] < 1
    assert summary["val/acc"] > summary["val/acc_start"] + 0.5
    assert summary["val/loss"] < summary["val/loss_start"]


@pytest.mark.slow  # a few seconds: the full suite runs it
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
    assert summary["steps"] == 60 and 0 < summary["schedule_saving"] < 1
    assert summary["val/loss"] < summary["val/loss_start"] - 1.0
    assert summary["val/mlm_acc"] > summary["val/mlm_acc_start"]


@pytest.mark.slow  # about 2 s
def test_gpt2_finetune_tiny_from_a_transformers_checkpoint(tmp_path):
    transformers = pytest.importorskip("transformers", reason="the [hf] extra (transformers) is not installed")
    torch.manual_seed(0)
    config = transformers.GPT2Config(n_layer=4, n_embd=32, n_head=4, vocab_size=256, n_positions=128)
    transformers.GPT2LMHeadModel(config).save_pretrained(tmp_path / "gpt2")
    overrides = [f"model.pretrained={tmp_path / 'gpt2'}", "data.max_bytes=120000", "ltd.ramp_steps=20", *QUICK]
    summary = train(compose_train(tmp_path, "experiment=gpt2_finetune_tiny", *overrides, tiny=False))
    assert summary["steps"] == 30 and 0 < summary["schedule_saving"] < 1
    assert summary["val/loss"] < summary["val/loss_start"] - 0.5


@pytest.mark.slow
def test_vit_finetune_tiny_from_a_local_timm_file(tmp_path):
    checkpoint = tiny_vit(tmp_path / "vit.pth")
    overrides = [f"model.pretrained={checkpoint}", "ltd.ramp_steps=60", *QUICK, "trainer.max_steps=100"]
    summary = train(compose_train(tmp_path, "experiment=vit_finetune_tiny", *overrides, tiny=False))
    assert summary["steps"] == 100
    assert summary["val/acc"] > summary["val/acc_start"] + 0.3


GPUS = 8
"""The pretraining recipes' global batch assumes 8 GPUs (data.batch_size x 8 x accumulate_grad_batches)."""

GPT3 = {
    "batch": 512,
    "min_lr": 1e-6,
    "warmup_tokens": 3e9,
    "decay": "cosine",
    "layers": list(range(1, 23)),
    "dropout": 0.1,
    "optimizer": "adamw",
    "weight_decay": 0.1,
    "betas": [0.9, 0.95],
}
BERT = {
    "batch": 1024,
    "min_lr": 1e-5,
    "warmup_steps": 10000,
    "decay": "linear",
    "layers": list(range(1, 23)),
    "dropout": 0.1,
    "optimizer": "adamw",
    "weight_decay": 0.01,
    "betas": [0.9, 0.999],
}
REFERENCE = {  # the table: Megatron-DeepSpeed and DeepSpeedExamples data_efficiency scripts
    "gpt3_1.3b_baseline": {**GPT3, "lr": 2e-4, "budget": 3e11, "ramp": None},
    "gpt3_1.3b": {**GPT3, "lr": 3e-4, "budget": 2e11, "ramp": 133_333},
    "gpt3_1.3b_300b": {**GPT3, "lr": 2e-4, "budget": 3e11, "ramp": 200_000},
    "bert_large_baseline": {**BERT, "lr": 1e-4, "budget": 2_000_000 * 1024 * 512, "ramp": None},
    "bert_large": {**BERT, "lr": 1.5e-4, "budget": 1_340_000 * 1024 * 512, "ramp": 1_340_000},
    "gpt2_finetune": {
        "batch": 4,
        "lr": 5e-5,
        "min_lr": 0.0,
        "warmup_steps": 100,
        "decay": "constant",
        "epochs": 2,
        "layers": list(range(1, 11)),
        "dropout": 0.1,
        "optimizer": "adamw",
        "weight_decay": 0.0,
        "betas": [0.9, 0.999],
        "ramp": 400,
    },
    "vit_b16_finetune": {
        "batch": 128,
        "lr": 1e-4,
        "min_lr": 0.0,
        "warmup_steps": 0,
        "decay": "constant",
        "epochs": 14,
        "layers": list(range(1, 11)),
        "dropout": 0.0,
        "optimizer": "sgd",
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "label_smoothing": 0.0,
        "ramp": 3910,
    },
}


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_recipes_resolve_to_the_reference_values(name, tmp_path):
    expected = REFERENCE[name]
    cfg = compose_train(tmp_path, f"experiment={name}", tiny=False)
    gpus = GPUS if "budget" in expected else 1
    assert cfg.data.batch_size * gpus * cfg.trainer.get("accumulate_grad_batches", 1) == expected["batch"]
    model, lr = cfg.model, cfg.lr
    assert (model.lr, lr.min_lr, lr.decay) == (expected["lr"], expected["min_lr"], expected["decay"])
    assert lr.get("warmup_tokens") == expected.get("warmup_tokens")
    assert lr.get("warmup_steps") == expected.get("warmup_steps")
    assert (model.ltd_layers, model.dropout, model.weight_decay) == (
        expected["layers"],
        expected["dropout"],
        expected["weight_decay"],
    )
    assert model.get("optimizer", "adamw") == expected["optimizer"]
    if expected["optimizer"] == "sgd":
        assert model.momentum == expected["momentum"] and model.label_smoothing == expected["label_smoothing"]
    else:
        assert list(model.betas) == expected["betas"]
    assert cfg.ltd.enabled == (expected["ramp"] is not None)
    if expected["ramp"] is not None:
        assert cfg.ltd.ramp_steps == expected["ramp"]
    if "budget" in expected:  # pretraining: the effective-token budget ends the run, the LR decays to it
        assert (lr.total_tokens, lr.stop_at_budget, cfg.trainer.max_steps) == (expected["budget"], True, -1)
        assert lr.total_layer_tokens is None and lr.total_steps is None
    else:  # finetuning: epochs end the run
        assert (cfg.trainer.max_epochs, cfg.trainer.max_steps) == (expected["epochs"], -1)
    assert cfg.trainer.gradient_clip_val == 1.0


def test_the_headline_budget_saving_computes_from_the_config_alone(tmp_path):
    cfg = compose_train(tmp_path, "experiment=gpt3_1.3b", tiny=False)
    n_layer = cfg.model.n_layer
    layer_tokens = cfg.lr.total_tokens * n_layer  # what the run consumes before its budget stops it
    saving = budget_saving(layer_tokens, n_layer, cfg.callbacks.summary.baseline_tokens)
    assert f"{100 * saving:.1f} %" == "33.3 %"
    # and the schedule saving of the same run: its own batches at full length, a different number
    batch = cfg.data.batch_size * GPUS * cfg.trainer.accumulate_grad_batches
    seq, dropping = cfg.data.block_size, len(cfg.model.ltd_layers)
    ramp, low, high, granularity = cfg.ltd.ramp_steps, cfg.ltd.min_keep, cfg.ltd.max_keep, cfg.ltd.granularity
    keeps = [mslg_keep(t, low, high, ramp, granularity) for t in range(ramp)]
    consumed = sum(layer_tokens_per_step(batch, seq, keep, n_layer, dropping) for keep in keeps)
    per_full_step = batch * seq * n_layer
    steps = ramp + math.ceil((layer_tokens - consumed) / per_full_step)  # full length after the ramp
    consumed += (steps - ramp) * per_full_step
    assert steps == 248_505 and f"{100 * schedule_saving(consumed, steps * per_full_step):.1f} %" == "23.2 %"
    baseline = compose_train(tmp_path, "experiment=gpt3_1.3b_baseline", tiny=False)
    assert baseline.lr.total_tokens == cfg.callbacks.summary.baseline_tokens
    bert = compose_train(tmp_path, "experiment=bert_large", tiny=False)
    assert budget_saving(bert.lr.total_tokens * 24, 24, bert.callbacks.summary.baseline_tokens) == pytest.approx(0.33)


CURRICULUM_RECIPES = {  # issue 23's table (DeepSpeed Data Efficiency's reference scripts)
    "gpt3_1.3b_cl_ltd": {
        "lengths": (80, 2048, 110_000),
        "rarity": (1, 110_000),  # percent, steps
        "ramp": 200_000,
        "lr": 2e-4,
        "tokens": 3e11,
    },
    "gpt3_1.3b_cl_ltd_150b": {
        "lengths": (80, 2048, 55_000),
        "rarity": (1, 55_000),
        "ramp": 100_000,
        "lr": 4e-4,
        "tokens": 1.5e11,
    },
    "bert_large_cl_ltd": {
        "lengths": (128, 512, 960_000),
        "rarity": (5, 960_000),
        "ramp": 2_000_000,
        "lr": 1e-4,
        "tokens": 2_000_000 * 1024 * 512,
    },
}


@pytest.mark.parametrize("name", sorted(CURRICULUM_RECIPES))
def test_curriculum_recipes_resolve_to_the_reference_values(name, tmp_path):
    from lightning_ltd.callbacks import Curriculum

    expected = CURRICULUM_RECIPES[name]
    cfg = compose_train(tmp_path, f"experiment={name}", tiny=False)
    curriculum = hydra.utils.instantiate(cfg.curriculum)
    assert isinstance(curriculum, Curriculum) and curriculum.seqlen and curriculum.rarity
    low, high, steps = expected["lengths"]
    lengths = curriculum.resolve(cfg.data.block_size)
    assert (lengths.min_len, lengths.max_len, lengths.steps, lengths.granularity) == (low, high, steps, 8)
    assert lengths.length_at(0) == low and lengths.length_at(steps) == high
    assert lengths.length_at(steps // 2) == (low + (high - low) // 2) // 8 * 8  # fixed_linear, in 8s
    assert (curriculum.rarity_percent, curriculum.rarity_steps, curriculum.rarity_degree) == (*expected["rarity"], 2)
    assert cfg.ltd.ramp_steps == expected["ramp"] and cfg.model.lr == expected["lr"]
    assert cfg.lr.total_tokens == expected["tokens"] and cfg.lr.stop_at_budget
