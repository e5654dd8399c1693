"""A NaN/inf training loss stops the run naming its step; no checkpoint is written after it."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightning_ltd.callbacks import NonFiniteLossError
from lightning_ltd.cli import train

ROOT = Path(__file__).resolve().parents[2]
EXPLODING = ["lr=constant", "model.lr=1e6", "callbacks.model_checkpoint.every_n_train_steps=5", "trainer.max_steps=30"]


def test_a_non_finite_loss_stops_the_run_before_any_checkpoint(train_config, tmp_path):
    with pytest.raises(NonFiniteLossError, match=r"not finite at optimizer step \d+: stopped") as err:
        train(train_config(*EXPLODING, "trainer.log_every_n_steps=50"))
    step = int(str(err.value).split("optimizer step ")[1].split(":")[0])
    assert step < 5  # a loss of 1e6-scaled updates explodes at once
    assert not list(tmp_path.rglob("*.ckpt"))  # the step-5 checkpoint would have held NaN weights


@pytest.mark.slow  # about 1.4 s
def test_the_last_good_checkpoint_stays_untouched(train_config, tmp_path):
    train(train_config("trainer.max_steps=5", "callbacks.model_checkpoint.every_n_train_steps=5"))
    last = next(tmp_path.rglob("last.ckpt"))
    before = last.read_bytes()
    poison = ["+callbacks.poison._target_=tests.helpers.poison.PoisonAt", "+callbacks.poison.step=7"]
    with pytest.raises(NonFiniteLossError, match="at optimizer step 7:"):
        train(train_config(f"ckpt_path={last}", "trainer.max_steps=20", *poison))
    assert last.read_bytes() == before
    assert all(torch.isfinite(v).all() for v in torch.load(last, weights_only=True)["state_dict"].values())


@pytest.mark.slow  # a subprocess or several compilations
def test_command_line_exits_3_with_one_line(tmp_path):
    quiet = ["~callbacks.progress_bar", "trainer.enable_progress_bar=false"]
    command = [sys.executable, "train.py", *EXPLODING, f"hydra.run.dir={tmp_path}", *quiet]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 3
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: the training loss or its gradients were not finite at optimizer step")


BAD_STEPS = ["+callbacks.bad._target_=tests.helpers.poison.BadLossAt", "+callbacks.bad.steps=[3,7]"]


@pytest.mark.slow  # about 1.2 s
def test_skip_steps_drops_bounded_bad_updates_and_leaves_weights_untouched(train_config):
    from lightning.pytorch.callbacks import Callback

    from lightning_ltd.callbacks import NonFiniteLossGuard
    from lightning_ltd.cli import build, run

    class Snapshots(Callback):
        def __init__(self):
            self.weights = {}

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            self.weights[trainer.global_step] = [p.detach().clone() for p in pl_module.parameters()]

    cfg = train_config(*BAD_STEPS, "callbacks.nonfinite_guard.skip_steps=2", "trainer.max_steps=12")
    module, datamodule, trainer = build(cfg)
    snapshots = Snapshots()
    trainer.callbacks.append(snapshots)
    with pytest.warns(UserWarning, match="skipped optimizer step 3"):
        summary = run(cfg, module, datamodule, trainer)
    guard = next(c for c in trainer.callbacks if isinstance(c, NonFiniteLossGuard))
    assert guard.skipped == [3, 7] and summary["steps"] == 12
    for bad in (3, 7):  # the bad step's update was dropped: weights and AdamW moments unchanged
        assert all(torch.equal(a, b) for a, b in zip(snapshots.weights[bad], snapshots.weights[bad + 1], strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(snapshots.weights[4], snapshots.weights[5], strict=True))
    assert all(torch.isfinite(p).all() for p in module.parameters())


def test_skip_steps_stops_at_the_first_bad_step_past_the_bound(train_config, tmp_path):
    cfg = train_config(*BAD_STEPS, "callbacks.nonfinite_guard.skip_steps=1", "trainer.max_steps=12")
    stopped = r"not finite at optimizer step 7, after 1 skipped step\(s\) \[3\]"
    with pytest.warns(UserWarning, match="skipped optimizer step 3"), pytest.raises(NonFiniteLossError, match=stopped):
        train(cfg)


def test_a_finite_loss_with_infinite_gradients_stops_before_the_checkpoint(train_config, tmp_path):
    inf_grad = ["+callbacks.inf._target_=tests.helpers.poison.InfGradAt", "+callbacks.inf.steps=[4]"]
    every = "callbacks.model_checkpoint.every_n_train_steps=5"
    with pytest.raises(NonFiniteLossError, match="or its gradients were not finite at optimizer step 4:"):
        train(train_config(*inf_grad, every, "trainer.max_steps=10", "trainer.log_every_n_steps=50"))
    assert not list(tmp_path.rglob("*.ckpt"))  # step 5's checkpoint would have held the inf update


def test_a_non_finite_weight_is_never_checkpointed_even_when_the_loss_looks_finite(train_config, tmp_path):
    from lightning.pytorch.callbacks import Callback

    class InfWeightAtSave(Callback):  # a weight goes bad after the last loss was computed
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if trainer.global_step == 5:
                with torch.no_grad():
                    next(pl_module.parameters())[0].fill_(float("inf"))

    from lightning_ltd.cli import build, run

    cfg = train_config("callbacks.model_checkpoint.every_n_train_steps=5", "trainer.max_steps=10")
    module, datamodule, trainer = build(cfg)
    trainer.callbacks.insert(0, InfWeightAtSave())
    with pytest.raises(NonFiniteLossError, match="a weight was not finite at optimizer step 5"):
        run(cfg, module, datamodule, trainer)
    assert not list(tmp_path.rglob("*.ckpt"))
