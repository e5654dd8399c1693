"""SIGTERM and SIGUSR1 write a checkpoint of the last whole optimizer step and exit 143 / 138;
resuming from it gives the uninterrupted run's losses bit for bit."""

import csv
from pathlib import Path

import pytest
import torch

from lightning_ltd.cli import run_command, train
from tests.conftest import compose_train

COMMON = ["lr.total_steps=10", "callbacks.model_checkpoint.every_n_train_steps=100", "ltd.ramp_steps=8"]


def losses(run_dir: Path) -> dict[int, float]:
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(metrics) if r.get("train/loss")}


def signal_at(step: int, name: str = "SIGTERM") -> list[str]:
    return [
        "+callbacks.signal._target_=tests.helpers.signals.SignalAt",
        f"+callbacks.signal.step={step}",
        f"+callbacks.signal.signal_name={name}",
    ]


@pytest.mark.slow  # interrupted and resumed runs: about 1 s each
@pytest.mark.parametrize(
    ("name", "code", "settings"),
    [
        ("SIGTERM", 143, []),
        pytest.param("SIGUSR1", 138, ["model.dropout=0.1"], marks=pytest.mark.slow),
        pytest.param("SIGTERM", 143, ["+trainer.accumulate_grad_batches=2"], marks=pytest.mark.slow),  # mid-step
        pytest.param("SIGTERM", 143, ["trainer.precision=bf16-true", "model.dropout=0.1"], marks=pytest.mark.slow),
    ],
    ids=["sigterm", "sigusr1-dropout", "sigterm-accumulating", "sigterm-bf16-true"],
)
def test_a_signal_checkpoints_the_last_whole_step_exits_non_zero_and_resumes_exactly(
    tmp_path, capsys, name, code, settings
):
    straight, stopped, resumed = tmp_path / "straight", tmp_path / "stopped", tmp_path / "resumed"
    common = [*COMMON, *settings]
    train(compose_train(straight, *common, "trainer.max_steps=10"))
    assert run_command(compose_train(stopped, *common, "trainer.max_steps=10", *signal_at(4, name))) == code
    checkpoint = stopped / "checkpoints" / "last.ckpt"
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        last_line
        == f"error: stopped by {name} at optimizer step 5: checkpoint written, resume with ckpt_path={checkpoint}"
    )
    assert torch.load(checkpoint, weights_only=True)["global_step"] == 5  # step 4 ran whole, not cut mid-step
    assert not list((stopped / "checkpoints").glob(".*partial"))
    train(compose_train(resumed, *common, "trainer.max_steps=10", f"ckpt_path={checkpoint}"))
    expected, again = losses(straight), losses(resumed)
    assert sorted(again) == list(range(5, 10))
    assert [again[s] for s in sorted(again)] == [expected[s] for s in sorted(again)]  # bit for bit


@pytest.mark.slow  # interrupted and resumed runs
def test_sigterm_during_a_save_leaves_whole_checkpoints_and_the_resume_is_exact(tmp_path, capsys):
    straight, stopped, resumed = tmp_path / "straight", tmp_path / "stopped", tmp_path / "resumed"
    common = ["lr.total_steps=10", "callbacks.model_checkpoint.every_n_train_steps=3", "ltd.ramp_steps=8"]
    train(compose_train(straight, *common, "trainer.max_steps=10"))
    in_save = ["+callbacks.signal._target_=tests.helpers.signals.SignalInSave"]
    assert run_command(compose_train(stopped, *common, "trainer.max_steps=10", *in_save)) == 143
    checkpoint = stopped / "checkpoints" / "last.ckpt"
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("error: stopped by SIGTERM at optimizer step")
    step = torch.load(checkpoint, weights_only=True)["global_step"]
    assert 3 <= step < 10 and not list((stopped / "checkpoints").glob(".*partial"))
    train(compose_train(resumed, *common, "trainer.max_steps=10", f"ckpt_path={checkpoint}"))
    expected, again = losses(straight), losses(resumed)
    assert sorted(again) == list(range(step, 10))
    assert [again[s] for s in sorted(again)] == [expected[s] for s in sorted(again)]  # bit for bit
