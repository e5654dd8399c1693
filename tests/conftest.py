import os
from pathlib import Path

import pytest

# torch, Lightning and Hydra are imported where used: the xdist controller loads this file too,
# and it runs no test

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
pytest_plugins = ["tests.helpers.interrupts"]  # Ctrl-C stops the suite, also inside a Lightning fit

if os.environ.get("PYTEST_XDIST_WORKER"):  # one thread per worker (and per process it starts): the
    os.environ["OMP_NUM_THREADS"] = "1"  # workers share the cores instead of fighting over them
    import torch

    torch.set_num_threads(1)

QUICK = [
    "trainer.max_steps=30",
    "trainer.val_check_interval=15",
    "trainer.log_every_n_steps=1",
    "trainer.limit_val_batches=4",
    "~callbacks.progress_bar",
    "callbacks.throughput.window_size=5",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]
"""Short runs, quiet: for every smoke test."""

TINY = [
    "model.n_layer=3",
    "model.n_embd=32",
    "model.n_head=2",
    "data.block_size=32",
    "data.batch_size=8",
    "data.max_bytes=120000",
    "ltd.min_keep=8",
    "ltd.ramp_steps=20",
    "ltd.granularity=4",
    "lr.warmup_steps=5",
    *QUICK,
]
"""The default GPT run, shrunk."""


def compose_train(output_dir: Path, *overrides: str, tiny: bool = True):
    """The real ``conf/train.yaml`` composed as ``python train.py`` would, writing under output_dir."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(
            "train",
            overrides=[*(TINY if tiny else []), f"paths.output_dir={output_dir}", *overrides],
        )


@pytest.fixture
def train_config(tmp_path):
    return lambda *overrides, tiny=True: compose_train(tmp_path, *overrides, tiny=tiny)


def make_tokenizer(path: Path, vocab_size: int = 300) -> Path:
    """A small byte-level BPE tokenizer trained here and saved as transformers saves one."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast

    bpe = ByteLevelBPETokenizer()
    text = ["the quick brown fox jumps over the lazy dog", "def main(): return 0", "random-LTD drops tokens"]
    bpe.train_from_iterator(text * 50, vocab_size=vocab_size, min_frequency=1, show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=bpe).save_pretrained(path)
    return path


def quiet_trainer(*callbacks, **kwargs):
    """A Trainer for unit tests: no logger, checkpoints, progress bar or model summary."""
    import lightning as L

    quiet = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return L.Trainer(callbacks=list(callbacks), enable_model_summary=False, **{**quiet, **kwargs})


LONG_TESTS = {
    "test_readme.py::test_a_newcomer_pastes": 220,  # a fresh venv and the whole default run
    "test_distributed.py::": 20,  # each: two gloo ranks
    "test_package.py::test_wheel_in_a_fresh_virtual_environment": 30,
    "test_experiments.py::test_vit_finetune_tiny_from_a_local_timm_file": 35,
    "test_tokens.py::test_a_killed_run_resumes_from_its_last_mid_epoch_checkpoint": 30,
}
"""Seconds the longest tests take on 2 cores (``--durations``), for ordering them."""


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist each worker starts with an even share of the longest tests (the work-
    stealing scheduler gives each worker a contiguous part of this order), so that no worker is
    left alone with a long test at the end."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return

    def weight(item):
        return next((seconds for key, seconds in LONG_TESTS.items() if key in item.nodeid), 0)

    long = sorted((item for item in items if weight(item)), key=weight, reverse=True)
    shares, loads = ([], []), [0, 0]
    for item in long:  # greedy: the heaviest first, each to the lighter share
        lighter = loads.index(min(loads))
        shares[lighter].append(item)
        loads[lighter] += weight(item)
    rest = [item for item in items if not weight(item)]
    middle = len(items) // 2 - len(shares[0])
    items[:] = shares[0] + rest[:middle] + shares[1] + rest[middle:]
