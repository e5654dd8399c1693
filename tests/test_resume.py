"""Training 2N steps straight equals N steps, a stop, and N more from ``ckpt_path``."""

import csv
from pathlib import Path

import pytest
import torch

from lightning_ltd.cli import train
from tests.conftest import compose_train

N = 10
COMMON = [f"lr.total_steps={2 * N}", f"callbacks.model_checkpoint.every_n_train_steps={N}", "ltd.ramp_steps=16"]


def losses(run_dir: Path) -> dict[int, float]:
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        return {int(r["step"]): float(r["train/loss"]) for r in csv.DictReader(metrics) if r.get("train/loss")}


@pytest.mark.parametrize(
    "settings",
    [[], ["model.dropout=0.1", "data.num_workers=2"]],
    ids=["plain", "dropout0.1-workers2"],
)
def test_resume_gives_the_same_losses_and_weights(tmp_path, settings):
    """Dropout masks are reseeded from (seed, rank, step, micro-batch) and kept indices are a pure
    function of them, so the checkpoint needs no RNG state, whatever the number of workers."""
    straight, first, second = tmp_path / "straight", tmp_path / "first", tmp_path / "second"
    common = [*COMMON, *settings]
    train(compose_train(straight, *common, f"trainer.max_steps={2 * N}"))
    train(compose_train(first, *common, f"trainer.max_steps={N}"))
    checkpoint = first / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, weights_only=True)  # plain types only
    assert state["global_step"] == N
    train(compose_train(second, *common, f"trainer.max_steps={2 * N}", f"ckpt_path={checkpoint}"))

    expected, resumed = losses(straight), losses(second)
    assert sorted(resumed) == list(range(N, 2 * N))
    assert [resumed[s] for s in sorted(resumed)] == [expected[s] for s in sorted(resumed)]  # bit for bit
    final = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)
    again = torch.load(second / "checkpoints" / "last.ckpt", weights_only=True)
    for name, value in final["state_dict"].items():
        assert torch.equal(value, again["state_dict"][name]), name
    assert final["callbacks"]["RandomLTDScheduler"] == again["callbacks"]["RandomLTDScheduler"]
    assert "random_ltd_samplers" not in again  # kept indices derive from the step: no sampler state
