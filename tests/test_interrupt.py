"""Ctrl-C during a Lightning ``fit`` stops the test suite (``tests/helpers/interrupts.py``)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUITE = """
import pathlib

import lightning as L
import torch
from torch.utils.data import DataLoader


class Started(L.Callback):
    def on_train_batch_end(self, trainer, *args):
        pathlib.Path("started").touch()


class Tiny(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch).square().mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_a_long_fit():
    trainer = L.Trainer(max_steps=10**9, callbacks=[Started()], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(Tiny(), DataLoader(torch.randn(64, 4), batch_size=8))


def test_after():
    pathlib.Path("after").touch()
"""


def default_ctrl_c() -> None:
    """In the child before it starts Python: SIGINT at its default. An ignored SIGINT is inherited
    across exec, and Python then installs no KeyboardInterrupt handler: a test before this one
    that ran Lightning's Ctrl-C shutdown (which sets SIGINT to ignored) would make every press
    here a no-op, as a CI run of the whole suite showed."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupted(child: subprocess.Popen, presses: int = 6, wait: float = 30.0) -> str:
    """Press Ctrl-C until the child ends (a user presses it again; Lightning ignores presses
    once it is shutting down), up to ``presses`` times ``wait`` seconds; its output."""
    for _ in range(presses):
        child.send_signal(signal.SIGINT)
        try:
            return child.communicate(timeout=wait)[0]
        except subprocess.TimeoutExpired:
            continue
    raise AssertionError(f"still running {presses * wait:.0f} s after {presses} presses of Ctrl-C")


@pytest.mark.slow  # a second pytest: about 10 s
def test_ctrl_c_inside_fit_stops_the_suite(tmp_path):
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "tests.helpers.interrupts",
        "-p",
        "no:cacheprovider",
        "test_suite.py",
    ]
    child = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_ctrl_c,
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "started").exists(), "the fit never started"
        output = interrupted(child)
    finally:
        child.kill()  # never left running: its endless fit would slow the rest of the suite
        child.wait()
    assert child.returncode == 2, output[-2000:]  # pytest's "interrupted"
    assert "KeyboardInterrupt" in output
    assert not (tmp_path / "after").exists()  # the next test never ran
