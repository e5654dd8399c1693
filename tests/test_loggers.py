"""``logger=tensorboard|wandb|mlflow|many``: each is written by a real run and read back, and holds
the kept length, the layer-tokens (against which curves are drawn), the LR and the summary."""

import csv
import time

import pytest

from lightning_ltd.cli import ConfigError, build, train
from tests.conftest import compose_train
from tests.helpers.wandb_records import history

KEYS = ("train/keep", "train/layer_tokens", "train/lr", "val/loss", "summary/schedule_saving")


def csv_metrics(folder) -> dict[str, list[float]]:
    with open(next(folder.rglob("metrics.csv"))) as metrics:
        rows = list(csv.DictReader(metrics))
    return {key: [float(r[key]) for r in rows if r.get(key)] for key in rows[0]}


@pytest.mark.slow  # about 4 s
def test_many_writes_csv_and_tensorboard_with_the_same_values(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(compose_train(tmp_path, "logger=many"))
    events = EventAccumulator(str(next((tmp_path / "tensorboard").iterdir()))).Reload()
    expected = csv_metrics(tmp_path)
    for key in KEYS:
        assert [e.value for e in events.Scalars(key)] == pytest.approx(expected[key], rel=1e-6), key


@pytest.mark.slow  # about 8 s: wandb starts its service
def test_wandb_runs_offline_under_the_run_folder(tmp_path, monkeypatch):
    wandb = pytest.importorskip("wandb")
    monkeypatch.delenv("WANDB_MODE", raising=False)
    train(compose_train(tmp_path, "logger=wandb"))
    wandb.finish()  # in this process the run stays open after the fit (a command's exit closes it)
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")  # offline: nothing was sent
    deadline = time.monotonic() + 60
    while not set(KEYS) <= set(rows := history(run_file)) and time.monotonic() < deadline:
        time.sleep(0.5)  # W&B's service process may still be writing the last records under load
    for key in KEYS:
        assert rows[key], key
    assert rows["train/layer_tokens"] == sorted(rows["train/layer_tokens"])


@pytest.mark.slow  # about 12 s: the SQLite store is created
def test_mlflow_writes_a_local_store_under_the_run_folder(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    train(compose_train(tmp_path, "logger=mlflow"))
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("lightning-ltd").experiment_id])
    for key in KEYS:
        assert client.get_metric_history(run.info.run_id, key), key
    tokens = [m.value for m in client.get_metric_history(run.info.run_id, "train/layer_tokens")]
    assert tokens == sorted(tokens) and tokens[-1] > 0


def test_a_missing_logger_package_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    class Missing:
        def __bool__(self) -> bool:
            return False

        def __str__(self) -> str:
            return "Requirement 'wandb>=0.12.10' not met. No module named 'wandb'"

    monkeypatch.setattr("lightning.pytorch.loggers.wandb._WANDB_AVAILABLE", Missing())
    with pytest.raises(ConfigError, match=r"^logger: .*wandb.* pip install 'lightning-ltd\[loggers\]'\)$"):
        build(compose_train(tmp_path, "logger=wandb"))
