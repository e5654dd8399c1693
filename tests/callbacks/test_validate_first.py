"""``ValidateFirst`` measures inside ``fit`` what ``trainer.validate`` measures before it."""

import pytest

from lightning_ltd.callbacks import RunSummary, ValidateFirst
from lightning_ltd.cli import build, run


def test_the_in_fit_validation_equals_a_separate_validate_and_starts_the_summary(train_config):
    cfg = train_config("trainer.max_steps=3", "model.dropout=0.1")
    module, datamodule, trainer = build(cfg)
    separate = trainer.validate(module, datamodule=datamodule, verbose=False)[0]["val/loss"]

    module, datamodule, trainer = build(cfg)
    summary = run(cfg, module, datamodule, trainer)
    assert any(isinstance(c, ValidateFirst) and c.ran for c in trainer.callbacks)
    assert summary["val/loss_start"] == pytest.approx(separate, rel=1e-6)  # same model, same batches, eval mode
    assert (
        next(c for c in trainer.callbacks if isinstance(c, RunSummary)).start_metrics["val/loss"]
        == summary["val/loss_start"]
    )
    assert trainer.global_step == 3 and module.training  # training went on in train mode


def test_no_pre_fit_validation_on_resume_or_when_switched_off(train_config):
    cfg = train_config("trainer.max_steps=2", "validate_before_fit=false")
    module, datamodule, trainer = build(cfg)
    summary = run(cfg, module, datamodule, trainer)
    assert not any(isinstance(c, ValidateFirst) for c in trainer.callbacks)
    assert "val/loss_start" not in summary
