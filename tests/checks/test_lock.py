"""One run per output folder: a second live run is refused at start, a killed run's lock is
free (on this host or another), and an interrupted save's leftovers are removed."""

import json
import signal

import pytest

from lightning_ltd.checks.lock import LOCK_NAME, FolderInUseError, RunLock, earlier_run_problem, hold, release_all
from lightning_ltd.cli import EXIT_BAD_INPUT, ConfigError, train
from tests.conftest import TINY, compose_train
from tests.helpers.entry import launched
from tests.helpers.locks import live_lock


@pytest.mark.slow  # a holder process and a run: about 5 s
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


@pytest.mark.slow  # a killed child process: about 5 s
def test_a_killed_runs_lock_is_free_and_its_partial_save_is_removed(tmp_path):
    killed = live_lock(tmp_path)
    killed.send_signal(signal.SIGKILL)  # no cleanup runs: the lock file stays, naming the dead holder
    killed.wait()
    assert f'"pid": {killed.pid}' in (tmp_path / LOCK_NAME).read_text()
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


def test_a_lock_file_left_by_a_dead_run_on_another_host_does_not_block_a_requeued_resume(tmp_path):
    """The lock is the kernel's (``flock``), not the file: a run that died on another node left
    only the file, which names a holder this host cannot ask about."""
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "started": "now"}))
    lock = RunLock(tmp_path)
    lock.acquire()
    assert lock.held and json.loads((tmp_path / LOCK_NAME).read_text())["pid"] != 1
    with pytest.raises(FolderInUseError, match="another run \\(pid "):  # and it is live again for others
        RunLock(tmp_path).acquire()  # a second lock object in this process is another holder
    lock.release()


def test_other_ranks_of_the_run_take_no_lock(tmp_path, monkeypatch):
    from lightning_ltd.checks.lock import hold_output_dir

    monkeypatch.setenv("LOCAL_RANK", "1")
    assert hold_output_dir(compose_train(tmp_path)) is None and not (tmp_path / LOCK_NAME).exists()


def test_a_fresh_run_into_a_finished_runs_folder_is_refused_before_anything_is_overwritten(
    tmp_path, monkeypatch, capsys
):
    """Through the entry point: Hydra would rewrite ``.hydra/config.yaml`` and the run its
    ``last.ckpt``; a resume (``ckpt_path``) into the same folder is allowed."""
    finished = tmp_path / "finished"
    (finished / "checkpoints").mkdir(parents=True)
    (finished / ".hydra").mkdir()
    (finished / "checkpoints" / "last.ckpt").write_bytes(b"the earlier run's weights")
    (finished / ".hydra" / "config.yaml").write_text("how the earlier run was made\n")
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    code, err = launched(monkeypatch, capsys, *TINY, "trainer.max_steps=2", f"hydra.run.dir={finished}")
    assert code == EXIT_BAD_INPUT and len(err.splitlines()) == 1, err
    assert f"hydra.run.dir='{finished}' holds an earlier run's checkpoint (checkpoints/last.ckpt)" in err
    assert f"ckpt_path={finished / 'checkpoints' / 'last.ckpt'}" in err
    assert {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()} == before
    assert not (finished / LOCK_NAME).exists()


def test_an_earlier_run_is_named_by_its_checkpoints_only(tmp_path):
    """A folder with a failed start's ``.hydra`` (a typo fixed, run again) or only logs is free."""
    assert earlier_run_problem(tmp_path / "missing", resuming=False) is None
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("error: ltd.min_keep=0 must be ...\n")
    assert earlier_run_problem(tmp_path, resuming=False) is None
    (tmp_path / "weights.ckpt").write_bytes(b"x")
    assert "(weights.ckpt)" in earlier_run_problem(tmp_path, resuming=False)
    assert earlier_run_problem(tmp_path, resuming=True) is None


def test_the_python_api_refuses_a_finished_runs_folder_too(tmp_path):
    train(compose_train(tmp_path, "trainer.max_steps=2"))
    with pytest.raises(ConfigError, match=r"holds an earlier run's checkpoint \(checkpoints/last.ckpt\)"):
        train(compose_train(tmp_path, "trainer.max_steps=2"))
    assert not (tmp_path / LOCK_NAME).exists()
