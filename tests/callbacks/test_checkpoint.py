"""``FinalCheckpoint``: ``last.ckpt`` holds the final state whatever the checkpoint cadence."""

import pytest
import torch

from lightning_ltd.callbacks import FinalCheckpoint
from lightning_ltd.cli import ConfigError, build, train


@pytest.mark.slow  # two runs: about 1 s
def test_last_checkpoint_is_the_final_step_and_resuming_it_has_nothing_to_do(train_config, tmp_path):
    """30 steps with a checkpoint every 20: Lightning alone keeps step 20 as "last"."""
    train(train_config("trainer.max_steps=30", "callbacks.model_checkpoint.every_n_train_steps=20"))
    folder = next(tmp_path.rglob("checkpoints"))
    last = torch.load(folder / "last.ckpt", weights_only=True)
    assert last["global_step"] == 30
    try:
        build(train_config("trainer.max_steps=30", f"ckpt_path={folder / 'last.ckpt'}"))
    except ConfigError as err:
        assert "already at step 30, nothing to train" in str(err)
    else:
        raise AssertionError("a finished run's last.ckpt must not retrain its last steps")


@pytest.mark.slow  # about 1.4 s
def test_no_extra_save_when_the_last_step_was_saved(train_config, tmp_path, monkeypatch):
    saved_at = []
    save = FinalCheckpoint._save_last_checkpoint

    def recording(self, trainer, candidates):
        saved_at.append(trainer.global_step)
        save(self, trainer, candidates)

    monkeypatch.setattr(FinalCheckpoint, "_save_last_checkpoint", recording)
    train(train_config("trainer.max_steps=20", "callbacks.model_checkpoint.every_n_train_steps=10"))
    assert saved_at == [10, 20]  # the cadence's own saves, none added at the end
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=True)["global_step"] == 20
