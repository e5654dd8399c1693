"""Checks across the built objects: no warning at start on a shipped experiment that does not
apply to it (a budget given in tokens is resolved only at the first batch, and still ends the run)."""

import warnings
from pathlib import Path

import pytest
from hydra.utils import instantiate

from lightning_ltd.checks.config import cadence_warnings
from lightning_ltd.checks.objects import endless_run_warnings
from lightning_ltd.errors import SettingWarning
from tests.conftest import CONF_DIR, compose_train, quiet_trainer

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.slow  # about 1.9 s
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_no_shipped_experiment_warns_at_start(experiment):
    cfg = compose_train(Path("unused"), f"experiment={experiment}", tiny=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lr = instantiate(cfg.lr) if cfg.get("lr") else None
        limits = {k: cfg.trainer[k] for k in ("max_steps", "max_epochs", "max_time") if cfg.trainer.get(k) is not None}
        trainer = quiet_trainer(accelerator="cpu", devices=1, **limits)
        found = cadence_warnings(cfg) + endless_run_warnings(trainer, lr)
    assert found == [] and [w for w in caught if issubclass(w.category, SettingWarning)] == []


def test_a_run_that_nothing_ends_is_still_warned_of():
    trainer = quiet_trainer(accelerator="cpu", max_steps=-1, max_epochs=-1)
    assert endless_run_warnings(trainer, None)
    budget = instantiate({"_target_": "lightning_ltd.ltd.LayerTokenLR", "total_tokens": 10**9, "stop_at_budget": True})
    assert endless_run_warnings(trainer, budget) == []  # its total is in tokens: resolved only at the first batch
