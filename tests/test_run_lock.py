"""One run per output folder: a second live run is refused at start, a killed run's lock is
taken over, and an interrupted save's leftovers are removed."""

import json
import os
import socket
import subprocess
import sys

import pytest

from lightning_ltd.cli import ConfigError, train
from lightning_ltd.run_lock import LOCK_NAME, FolderInUseError, RunLock
from tests.conftest import compose_train


def test_a_second_run_into_a_held_folder_stops_at_start_writing_nothing(tmp_path):
    first = RunLock(tmp_path)
    first.acquire()  # a live run (this process) holds the folder
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=rf"paths.output_dir='{tmp_path}': another run \(pid {os.getpid()} on "):
        train(compose_train(tmp_path, "trainer.max_steps=2"))
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # no checkpoint, no metrics
    first.release()
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


def test_a_lock_held_on_another_host_counts_as_live(tmp_path):
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "now"}))
    with pytest.raises(FolderInUseError, match="pid 1 on elsewhere"):
        RunLock(tmp_path).acquire()


def test_other_ranks_of_the_run_take_no_lock(tmp_path, monkeypatch):
    from lightning_ltd.cli import hold_output_dir

    monkeypatch.setenv("LOCAL_RANK", "1")
    assert hold_output_dir(compose_train(tmp_path)) is None and not (tmp_path / LOCK_NAME).exists()
