"""Runs under an interpreter that has litgpt (see test_litgpt.py): ``model=litgpt`` through
``train.py``'s own entry (config names and checkpoint folders), exact resume, FLOPs, bad input.
Exits non-zero on the first failed check.

    PYTHONPATH=REPO python litgpt_module_checks.py OUT
"""

import csv
import sys
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from litgpt import Config
from litgpt.model import GPT
from litgpt.utils import save_config

from lightning_ltd.cli import ConfigError, build, train
from lightning_ltd.modules import LitGPTModule

CONF = Path(__file__).resolve().parents[2] / "conf"
SMALL = [
    "model=litgpt",
    "data.block_size=64",
    "data.batch_size=4",
    "data.max_bytes=60000",
    "ltd.min_keep=16",
    "ltd.ramp_steps=8",
    "ltd.granularity=8",
    "lr.warmup_steps=2",
    "lr.total_steps=8",  # the same LR schedule for the 4-step first half as for the whole run
    "callbacks.model_checkpoint.every_n_train_steps=4",
    "trainer.val_check_interval=4",
    "trainer.log_every_n_steps=1",
    "trainer.limit_val_batches=2",
    "~callbacks.progress_bar",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def config(out: Path, *overrides: str):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose("train", overrides=[*SMALL, f"paths.output_dir={out}", *overrides])


def metrics(out: Path) -> list[dict[str, str]]:
    with open(next(out.rglob("metrics.csv"))) as file:
        return list(csv.DictReader(file))


def resume_is_exact(out: Path) -> None:
    """pythia-14m by name, with dropout 0.1 in the curriculum-free default schedule: 8 steps
    straight against 4 + 4 resumed, bit for bit; the throughput monitor reports model FLOPs."""
    name = ["model.config=pythia-14m"]
    summary = train(config(out / "straight", *name, "trainer.max_steps=8"))
    assert 0 < summary["schedule_saving"] < 1, summary
    train(config(out / "first", *name, "trainer.max_steps=4"))
    checkpoint = out / "first" / "checkpoints" / "last.ckpt"
    train(config(out / "second", *name, "trainer.max_steps=8", f"ckpt_path={checkpoint}"))
    final = torch.load(out / "straight" / "checkpoints" / "last.ckpt", weights_only=True)
    again = torch.load(out / "second" / "checkpoints" / "last.ckpt", weights_only=True)
    for key, value in final["state_dict"].items():
        assert torch.equal(value, again["state_dict"][key]), key
    assert final["callbacks"]["RandomLTDScheduler"] == again["callbacks"]["RandomLTDScheduler"]
    rows = metrics(out / "straight")
    losses = [float(r["val/loss"]) for r in rows if r["val/loss"]]
    assert losses[-1] < losses[0], losses
    flops = [float(r["train/device/flops_per_sec"]) for r in rows if r["train/device/flops_per_sec"]]
    assert flops and min(flops) > 0, "no model FLOPs reported"


def checkpoint_dir_loads_its_weights(out: Path) -> None:
    """A LitGPT checkpoint folder: its config is the architecture, its weights the start."""
    litgpt_config = Config(
        n_layer=4, n_embd=32, n_head=4, block_size=64, vocab_size=300, padded_vocab_size=320, bias=False
    )
    folder = out / "lit_checkpoint"
    folder.mkdir(parents=True)
    torch.manual_seed(5)
    saved = GPT(litgpt_config).state_dict()
    save_config(litgpt_config, folder)
    torch.save(saved, folder / "lit_model.pth")
    module = LitGPTModule(checkpoint_dir=str(folder))
    assert module.num_layers == 4 and module.hparams.ltd_layers == [1, 2] and module.vocab_size == 320
    loaded = module.model.state_dict()
    for key, value in saved.items():
        if key in loaded:  # the rotary cache is rebuilt, not loaded
            assert torch.equal(value, loaded[key]), key
    summary = train(config(out / "from_folder", f"model.checkpoint_dir={folder}", "trainer.max_steps=4"))
    assert summary["steps"] == 4, summary


def bad_inputs_are_one_line(out: Path) -> None:
    folder = out / "broken"
    folder.mkdir()
    (folder / "model_config.yaml").write_text("n_layer: [oops\n")
    empty = out / "empty"
    empty.mkdir()
    name = "model.config=pythia-14m"
    cases = [
        (["model.config=no-such-model"], "model.config='no-such-model': not a LitGPT config name"),
        (["model.checkpoint_dir=/nope"], "model.checkpoint_dir='/nope': no model_config.yaml"),
        ([f"model.checkpoint_dir={empty}"], "no model_config.yaml"),
        ([f"model.checkpoint_dir={folder}"], "model_config.yaml is not a LitGPT config"),
        ([name, "model.max_seq_len=100000"], "model.max_seq_len=100000 must be <= the config's block_size"),
        ([name, "model.checkpoint_dir=/nope"], "give exactly one"),
        ([], "give exactly one"),
    ]
    for overrides, expected in cases:
        try:
            build(config(out / "bad", *overrides))
        except ConfigError as err:
            assert expected in str(err) and "\n" not in str(err), (overrides, str(err))
        else:
            raise AssertionError(f"{overrides} was accepted")


if __name__ == "__main__":
    root = Path(sys.argv[1])
    bad_inputs_are_one_line(root)
    checkpoint_dir_loads_its_weights(root)
    resume_is_exact(root)
    print("litgpt module checks passed")
