"""``RunSummary``: the final state's metrics, the run's own segment after a resume, budget stops."""

import pytest

from lightning_ltd.callbacks.summary import format_summary
from lightning_ltd.cli import train
from tests.conftest import compose_train


def test_a_short_run_ends_with_a_validation_of_its_final_state(train_config):
    """20 steps under a 300-step validation interval: Lightning alone would never validate."""
    summary = train(train_config("trainer.max_steps=20", "trainer.val_check_interval=300"))
    assert summary["steps"] == 20 and summary["val/loss"] < summary["val/loss_start"]
    assert "val/loss" in format_summary(summary)


@pytest.mark.slow  # two runs: about 1 s
def test_a_resumed_run_reports_its_own_segment(train_config, tmp_path):
    first = train(train_config("trainer.max_steps=20", "callbacks.model_checkpoint.every_n_train_steps=20"))
    checkpoint = next(tmp_path.rglob("last.ckpt"))
    resumed = train(train_config("trainer.max_steps=30", f"ckpt_path={checkpoint}"))
    assert (resumed["steps"], resumed["segment_steps"], resumed["resumed_from_step"]) == (30, 10, 20)
    assert resumed["full_layer_tokens"] == first["full_layer_tokens"] * 3 // 2  # tokens: the whole run's
    segment_tokens = first["full_layer_tokens"] // 2 / 3  # 10 steps' tokens read (3 layers in the tiny GPT)
    assert resumed["tokens_per_s"] == pytest.approx(segment_tokens / resumed["wall_time_s"])  # time: this run's
    assert "30 (10 in this run, resumed from step 20)" in format_summary(resumed)


@pytest.mark.slow  # about 1 s
def test_a_budget_stop_says_so(tmp_path):
    budget = [
        "lr=layer_token_budget",
        "lr.total_layer_tokens=15360",
        "lr.warmup_layer_tokens=1000",
        "lr.warmup_steps=null",
    ]
    summary = train(compose_train(tmp_path / "budget", *budget, "ltd=off"))
    assert summary["budget_stop_step"] == summary["steps"] == 20
    assert "by the layer-token budget at step 20" in format_summary(summary)
    assert "budget_stop_step" not in train(compose_train(tmp_path / "steps", "trainer.max_steps=5"))
