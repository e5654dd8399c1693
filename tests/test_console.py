"""A quiet console (``lightning_ltd/console.py``): our summary, our warnings naming the setting,
Lightning's progress bar; and the same in the run folder's ``train.log``."""

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_ltd.callbacks import ParameterSummary
from lightning_ltd.console import DropLines, format_warning, log_records_held, quiet_console
from lightning_ltd.errors import SettingWarning
from lightning_ltd.models import compile as compile_module
from lightning_ltd.modules import GPTModule
from tests.conftest import TINY, quiet_trainer

ROOT = Path(__file__).resolve().parents[1]
NOISE = (
    "litlogger",
    "LeafSpec",
    "FLOPs",
    "Flops",
    "GPU available",
    "_instantiate2.py",
    "hydra/_internal",
    "was not set",
)


@pytest.mark.slow  # python train.py in a subprocess: about 15 s
def test_train_py_prints_only_the_summary_our_warnings_and_writes_the_outputs_the_readme_names(tmp_path):
    overrides = [o for o in TINY if not o.startswith(("trainer.enable_model_summary", "lr.warmup_steps"))]
    command = [
        sys.executable,
        "train.py",
        *overrides,
        "trainer.max_steps=12",
        "trainer.val_check_interval=6",
        "lr.warmup_steps=50",
    ]
    done = subprocess.run(
        [*command, f"hydra.run.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    console = done.stdout + done.stderr
    assert not [word for word in NOISE if word in console], console
    assert (
        done.stderr.strip()
        == "warning: lr.warmup_steps=50 is longer than the run (lr.total_steps=12): warming up over all 12 steps"
    )
    assert "Trainable params" in done.stdout and "==== run summary ====" in done.stdout  # table, summary
    log = (tmp_path / "train.log").read_text()
    assert "==== run summary ====" in log and "val/loss" in log
    assert "warning: lr.warmup_steps=50 is longer than the run" in log  # the console's warning, in the log too
    readme = (ROOT / "README.md").read_text().split("Outputs go to `outputs/DATE/TIME/`", 1)[1].split("\n\n", 1)[0]
    for path in (".hydra/config.yaml", "train.log", "csv/version_0/metrics.csv", "checkpoints/last.ckpt"):
        assert (tmp_path / path).is_file() and f"`{path}`" in readme, path  # the layout as the README says


def test_setting_warnings_are_one_line_naming_the_setting():
    line = format_warning(SettingWarning("lr.warmup_steps=50 is longer"), SettingWarning, "/x/_instantiate2.py", 129)
    assert line == "warning: lr.warmup_steps=50 is longer\n"
    other = format_warning(UserWarning("other"), UserWarning, "/x/y.py", 3)
    assert "y.py:3" in other  # other libraries' warnings keep Python's form


def test_lightning_adverts_and_census_are_dropped_the_rest_kept():
    def record(message):
        return logging.LogRecord("lightning.pytorch.utilities.rank_zero", logging.INFO, "", 0, message, None, None)

    drop = DropLines()
    assert not drop.filter(record("💡 Tip: ... try installing [litlogger](https://pypi.org/project/litlogger/) ..."))
    assert not drop.filter(record("GPU available: False, used: False"))
    assert drop.filter(record("Restoring states from the checkpoint path at last.ckpt"))
    assert drop.filter(record("\n==== run summary ===="))


def test_the_model_summary_has_no_flops(caplog):
    lightning_logger = logging.getLogger("lightning.pytorch")
    lightning_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
            module = GPTModule(vocab_size=64, block_size=16, n_layer=3, n_head=2, n_embd=16)
            trainer = quiet_trainer(ParameterSummary(max_depth=1), max_steps=1)
            trainer.fit(module, DataLoader(torch.randint(0, 64, (8, 17)), batch_size=4))
    finally:
        lightning_logger.removeHandler(caplog.handler)
    assert "Trainable params" in caplog.text and "| model" in caplog.text
    assert "FLOPs" not in caplog.text and "Flops" not in caplog.text


def test_the_model_summary_of_a_mixed_precision_run_warns_nothing():
    """Lightning warns that it sizes bf16-mixed weights at 32 bits, which is what they are."""
    with warnings.catch_warnings(record=True) as shown:
        quiet_console()
        module = GPTModule(vocab_size=64, block_size=16, n_layer=3, n_head=2, n_embd=16)
        trainer = quiet_trainer(ParameterSummary(max_depth=1), max_steps=1, precision="bf16-mixed")
        trainer.fit(module, DataLoader(torch.randint(0, 64, (8, 17)), batch_size=4))
    assert not [str(w.message) for w in shown if "model summary" in str(w.message)]


def test_compile_on_a_cpu_warns_that_it_pays_off_on_gpus(monkeypatch):
    monkeypatch.setattr(compile_module, "compile_model", lambda model, mode=None: model)  # the warning, not the compile
    module = GPTModule(vocab_size=64, block_size=16, n_layer=3, n_head=2, n_embd=16, compile=True)
    trainer = quiet_trainer(max_steps=1)
    with pytest.warns(SettingWarning, match=r"model.compile=true on a CPU: .* pays off on GPUs"):
        trainer.fit(module, DataLoader(torch.randint(0, 64, (8, 17)), batch_size=4))
    with warnings.catch_warnings():
        warnings.simplefilter("error", SettingWarning)
        GPTModule(vocab_size=64, block_size=16, n_layer=3, n_head=2, n_embd=16)  # nothing without compile


class Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_log_records_are_held_until_the_block_succeeds_and_dropped_when_it_fails():
    library, kept = logging.getLogger("some_library"), Kept()
    library.addHandler(kept)
    try:
        with log_records_held("some_library"):
            logging.getLogger("some_library.loader").warning("a note about the folder")
            assert kept.messages == []  # held, not shown yet
        assert kept.messages == ["a note about the folder"]
        with pytest.raises(ValueError), log_records_held("some_library"):
            logging.getLogger("some_library.loader").warning("a note about a folder it then refuses")
            raise ValueError("the folder is bad")
        assert kept.messages == ["a note about the folder"]  # dropped with the failure
        added = Kept()
        with log_records_held("some_library"):
            library.addHandler(added)  # a library configuring itself on first import
        assert added in library.handlers and kept in library.handlers
    finally:
        library.handlers = []


LIBRARY_FIT = """
import lightning as L, torch
from torch.utils.data import DataLoader
from lightning_ltd import GPTModule, RandomLTDScheduler
module = GPTModule(vocab_size=64, block_size=32, n_layer=3, n_embd=32, n_head=2)
trainer = L.Trainer(max_steps=4, callbacks=[RandomLTDScheduler(min_keep=8, ramp_steps=2, granularity=4)],
                    logger=False, enable_checkpointing=False, enable_progress_bar=False)
trainer.fit(module, DataLoader(torch.randint(0, 64, (32, 33)), batch_size=8))
"""


@pytest.mark.slow  # a process: about 6 s
def test_library_use_shows_neither_lightnings_advert_nor_its_own_deprecations():
    done = subprocess.run([sys.executable, "-c", LIBRARY_FIT], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "litlogger" not in output and "LeafSpec" not in output and "GPU available" not in output
    assert "Trainable params" in output  # Lightning's other notes still show
