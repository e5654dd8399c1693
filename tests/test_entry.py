"""The entry point: a bad override or config option is one line and exit 2, and a folder in use
is refused before Hydra writes into it (its ``.hydra/`` stays the first run's)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lightning_ltd.checks.lock import LOCK_NAME
from lightning_ltd.cli import main
from lightning_ltd.entry import OURS, RAISE_VARIABLE, launch
from tests.conftest import TINY
from tests.helpers.entry import hydra_logging_undone, launched
from tests.helpers.locks import live_lock

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "override, expected",
    [
        ("ltd=foo", "Could not find 'ltd/foo' Available options in 'ltd': off, on"),
        ("model=nope", "Could not find 'model/nope'"),
        ("foo=1", "Could not override 'foo'. To append to your config use +foo=1 (Key 'foo' is not in struct)"),
        ("model.lr=[1", "model.lr=[1: no viable alternative at input '[1'"),
        ("+model=gpt_small", "model appears more than once in the final defaults list"),
        ("experiment=nope", "Could not find 'experiment/nope'"),
        ("~seed=", "Could not delete from config. The value of 'seed' is 1234 and not ."),
        ("ltd=null", "ltd=null: every run needs one ltd option (ltd=off trains without dropping)"),
        ("model=null", "model=null: every run needs one model option"),
        ("logger=1", "Config group override must be a string or a list. Got int"),  # Hydra's plain ValueError
        ("logger=[csv,5]", "logger=[csv,5]"),  # a TypeError inside Hydra's defaults list
    ],
)
def test_a_composition_error_is_one_line_and_exit_2_with_nothing_written(
    monkeypatch, capsys, tmp_path, override, expected
):
    monkeypatch.delenv(RAISE_VARIABLE, raising=False)
    code, err = launched(monkeypatch, capsys, override, f"hydra.run.dir={tmp_path / 'run'}")
    assert code == 2 and err.startswith("error: ") and len(err.splitlines()) == 1, err
    assert expected in err, err
    assert not (tmp_path / "run").exists()
    assert RAISE_VARIABLE not in os.environ and OURS not in os.environ  # restored for what runs next


def test_a_user_who_set_hydra_full_error_keeps_the_full_report(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv(RAISE_VARIABLE, "1")
    monkeypatch.setattr(sys, "argv", ["lightning-ltd-train", "ltd=foo", f"hydra.run.dir={tmp_path}"])
    with pytest.raises(Exception, match="Could not find 'ltd/foo'"):
        launch(main)
    assert os.environ[RAISE_VARIABLE] == "1"


@pytest.mark.slow  # a holder process: about 5 s
def test_a_folder_in_use_is_refused_before_hydra_writes_into_it(monkeypatch, capsys, tmp_path):
    (tmp_path / ".hydra").mkdir()
    (tmp_path / ".hydra" / "config.yaml").write_text("the first run's config\n")
    sleeper = live_lock(tmp_path)
    try:
        code, err = launched(monkeypatch, capsys, f"hydra.run.dir={tmp_path}", "model.lr=0.002")
    finally:
        sleeper.kill()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"error: hydra.run.dir='{tmp_path}': another run (pid {sleeper.pid} on " in err
    assert (tmp_path / ".hydra" / "config.yaml").read_text() == "the first run's config\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hydra", LOCK_NAME]  # no train.log either


def test_a_run_folder_that_cannot_be_created_is_one_line(monkeypatch, capsys):
    code, err = launched(monkeypatch, capsys, "hydra.run.dir=/proc/nope/run")
    assert code == 2 and err == "error: hydra.run.dir='/proc/nope/run': cannot create it (No such file or directory)"


@pytest.mark.parametrize("folder", ["''", "' '"])
def test_an_empty_run_folder_is_refused_before_hydra_writes_into_the_current_one(monkeypatch, capsys, tmp_path, folder):
    monkeypatch.chdir(tmp_path)
    code, err = launched(monkeypatch, capsys, f"hydra.run.dir={folder}")
    assert code == 2 and err == f"error: hydra.run.dir={folder} is empty: name the run's folder"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # a whole (tiny) run
def test_a_run_keeps_the_entry_points_lock_and_releases_it(monkeypatch, capsys, tmp_path):
    overrides = [o for o in TINY if not o.startswith("~")] + ["trainer.max_steps=2"]
    code, err = launched(monkeypatch, capsys, *overrides, f"hydra.run.dir={tmp_path}")
    assert code == 0, err
    assert (tmp_path / ".hydra" / "config.yaml").is_file() and (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert not (tmp_path / LOCK_NAME).exists()


@pytest.mark.slow  # a subprocess: train.py itself
def test_train_py_reports_a_composition_error_in_one_line(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "ltd=foo", f"hydra.run.dir={tmp_path / 'run'}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != RAISE_VARIABLE},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == "error: In 'train': Could not find 'ltd/foo' Available options in 'ltd': off, on"
    assert not (tmp_path / "run").exists()


@pytest.mark.slow  # about 1.2 s
@pytest.mark.parametrize("removal", ["logger=null", "~logger"])
def test_a_group_a_run_can_do_without_is_dropped_by_null_as_by_tilde(monkeypatch, capsys, tmp_path, removal):
    """``logger=null`` is what our messages and users write; Hydra takes only ``~logger``. Without
    a logger the callbacks that only log (learning rate, throughput) are left out."""
    code, err = launched(monkeypatch, capsys, *TINY, "trainer.max_steps=2", removal, f"hydra.run.dir={tmp_path}")
    assert code == 0, err
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file() and not list(tmp_path.rglob("metrics.csv"))


def test_an_error_inside_a_task_is_not_reported_as_a_bad_override(monkeypatch, capsys, tmp_path):
    """Once the task starts, a ``ValueError`` is the task's (a bug keeps its traceback), not a
    composition error: ``lightning-ltd-eval`` used to print "the overrides: ..." for any of them."""
    from lightning_ltd.evaluate import cli as eval_cli

    def failing(cfg):
        raise ValueError("a bug inside the evaluation")

    monkeypatch.setattr(eval_cli, "evaluate", failing)
    monkeypatch.setattr(sys, "argv", ["lightning-ltd-eval", "tasks=[x]", f"output_dir={tmp_path}"])
    monkeypatch.delenv(RAISE_VARIABLE, raising=False)
    with hydra_logging_undone(), pytest.raises(SystemExit) as stopped:  # Hydra's own report, traceback and all
        eval_cli.eval_main()
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "ValueError: a bug inside the evaluation" in err
    assert "error: the overrides" not in err and "error: tasks=" not in err
    assert RAISE_VARIABLE not in os.environ and OURS not in os.environ


@pytest.mark.slow  # a process: about 4 s
def test_help_lists_our_groups_and_keys():
    done = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "== Groups ==" in done.stdout and "litgpt (model.config=NAME)" in done.stdout
    assert "logger: csv, many, mlflow, tensorboard, wandb" in done.stdout  # every option, from conf/
