"""Checkpoint saves are whole or absent; a folder that cannot take them is an error at start."""

import pytest
import torch

from lightning_ltd.checkpoint import AtomicCheckpointIO
from lightning_ltd.cli import ConfigError, build


def test_a_crash_mid_save_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    io = AtomicCheckpointIO()
    target = tmp_path / "checkpoints" / "last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.ones(3)}, target)

    def dies_half_way(obj, handle, *args, **kwargs):
        handle.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt  # the process is stopped in the middle of the write

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2, "weights": torch.zeros(3)}, target)
    monkeypatch.undo()
    assert io.load_checkpoint(target)["step"] == 1  # the previous checkpoint, whole
    assert [p.name for p in target.parent.iterdir()] == ["last.ckpt"]  # no partial file left behind


def test_loads_are_weights_only(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 1, "not_plain": torch.nn.Linear(1, 1)}, tmp_path / "module.ckpt")
    with pytest.raises(Exception, match=r"(?i)weights_only"):
        io.load_checkpoint(tmp_path / "module.ckpt")


def test_checkpoint_folder_that_cannot_be_written_is_an_error_at_start(train_config, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(ConfigError) as err:
        build(train_config(f"callbacks.model_checkpoint.dirpath={blocker / 'checkpoints'}"))
    message = str(err.value)
    assert "callbacks.model_checkpoint.dirpath=" in message and "is a file, not a folder" in message
    assert "\n" not in message


def test_the_trainer_configs_use_atomic_saves(train_config):
    _, _, trainer = build(train_config())
    assert isinstance(trainer.strategy.checkpoint_io, AtomicCheckpointIO)


def test_a_folder_is_probed_by_creating_it_and_nothing_is_left(tmp_path):
    from lightning_ltd.checkpoint import unwritable_folder

    assert unwritable_folder(tmp_path / "a" / "b" / "c") is None and list(tmp_path.iterdir()) == []
    assert unwritable_folder("/proc/nope/deeper") == "cannot create /proc/nope (No such file or directory)"
    (tmp_path / "file").write_text("x")
    assert unwritable_folder(tmp_path / "file" / "sub") == f"{tmp_path / 'file'} is a file, not a folder"
