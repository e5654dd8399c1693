"""One run per output folder: a second live run is refused at start, a killed run's lock is
taken over, and an interrupted save's leftovers are removed."""

import json
import socket
import subprocess
import sys

import pytest

from lightning_ltd.cli import ConfigError, train
from lightning_ltd.run_lock import LOCK_NAME, FolderInUseError, RunLock, hold, release_all
from tests.conftest import compose_train
from tests.helpers.locks import live_lock


def test_a_second_run_into_a_held_folder_stops_at_start_writing_nothing(tmp_path):
    first = live_lock(tmp_path)  # a live run holds the folder
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=rf"paths.output_dir='{tmp_path}': another run \(pid {first.pid} on "):
        train(compose_train(tmp_path, "trainer.max_steps=2"))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no checkpoint, no metrics
    first.kill()
    first.wait()
    train(compose_train(tmp_path, "trainer.max_steps=2"))  # free again: it runs
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and not (tmp_path / LOCK_NAME).exists()


def test_a_killed_runs_lock_is_stale_and_its_partial_save_is_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = {"pid": int(dead.stdout), "host": socket.gethostname(), "started": "2026-12-01 00:00:00"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(holder))
    (tmp_path / "checkpoints").mkdir()
    leftover = tmp_path / "checkpoints" / ".last.ckpt.12345.partial"
    leftover.write_bytes(b"half a checkpoint")
    train(compose_train(tmp_path, "trainer.max_steps=2"))
    assert not leftover.exists() and (tmp_path / "checkpoints" / "last.ckpt").is_file()


def test_the_lock_is_one_per_process_and_folder(tmp_path):
    """The entry point takes it before Hydra writes; the run it starts continues under it."""
    first = hold(tmp_path)
    assert hold(tmp_path / ".") is first and first.held
    first.release()
    assert not (tmp_path / LOCK_NAME).exists() and hold(tmp_path) is not first
    release_all()
    assert not (tmp_path / LOCK_NAME).exists()


def test_a_lock_held_on_another_host_counts_as_live(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "now"}))
    with pytest.raises(FolderInUseError, match="pid 1 on elsewhere"):
        RunLock(tmp_path).acquire()


def test_other_ranks_of_the_run_take_no_lock(tmp_path, monkeypatch):
    from lightning_ltd.cli import hold_output_dir

    monkeypatch.setenv("LOCAL_RANK", "1")
    assert hold_output_dir(compose_train(tmp_path)) is None and not (tmp_path / LOCK_NAME).exists()
