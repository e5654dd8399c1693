"""``TokenThroughputMonitor`` reads the clock (and synchronises) on logging steps only, and its
rates are the counted batches, rows and tokens over that time."""

import csv
from pathlib import Path

import pytest

from lightning_ltd.callbacks import TokenThroughputMonitor
from lightning_ltd.cli import build, run


def monitored_run(train_config, monkeypatch, *overrides):
    syncs = []
    monkeypatch.setattr(TokenThroughputMonitor, "_synchronize", staticmethod(lambda trainer: syncs.append(1)))
    cfg = train_config("callbacks.throughput.window_size=2", *overrides)
    module, datamodule, trainer = build(cfg)
    run(cfg, module, datamodule, trainer)
    with open(Path(trainer.log_dir) / "metrics.csv") as handle:
        rows = [r for r in csv.DictReader(handle)]
    return len(syncs), rows


@pytest.mark.slow  # about 1 s
@pytest.mark.parametrize("accumulate", [1, 3])
def test_one_sync_per_logging_step_not_per_micro_batch(train_config, monkeypatch, accumulate):
    syncs, rows = monitored_run(
        train_config,
        monkeypatch,
        "trainer.max_steps=12",
        "trainer.log_every_n_steps=4",
        f"+trainer.accumulate_grad_batches={accumulate}",
        "trainer.val_check_interval=6",
    )
    validations = sum(1 for r in rows if r.get("validate/batches"))
    assert validations >= 1
    assert syncs == 12 // 4 + validations  # steps 4, 8, 12 and once per validation: not 12 x accumulate
    train_rows = [r for r in rows if r.get("train/batches")]
    assert [float(r["train/batches"]) for r in train_rows] == [4 * accumulate * k for k in (1, 2, 3)]
    later = [r for r in train_rows if r.get("train/device/items_per_sec")]
    assert later, "rates from the second logging point on"
    for row in later:  # tokens per second over the last interval = tokens per row x rows per second
        tokens_per_row = float(row["train/device/items_per_sec"]) / float(row["train/device/samples_per_sec"])
        assert tokens_per_row == pytest.approx(32)
