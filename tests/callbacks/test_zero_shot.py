"""callbacks.zero_shot: harness metrics during training, equal to evaluating the checkpoint."""

import csv

import pytest
import torch

pytest.importorskip("lm_eval")

from hydra import compose, initialize_config_dir

from lightning_ltd.cli import train
from lightning_ltd.evaluate.cli import evaluate

from ..conftest import CONF_DIR, compose_train
from ..evaluate.conftest import write_tasks

pytestmark = pytest.mark.slow  # two short training runs with the harness (about 30-45 s in all)
REAL = ["model.dropout=0.1", "trainer.max_steps=10", "trainer.val_check_interval=5"]


def zero_shot(tasks) -> list[str]:
    return ["callbacks.zero_shot.tasks=[tiny_cloze]", f"callbacks.zero_shot.include_path={tasks}"]


def logged(run, key: str) -> dict[int, float]:
    with open(next(run.rglob("metrics.csv"))) as f:
        return {int(row["step"]): float(row[key]) for row in csv.DictReader(f) if row.get(key)}


def test_logs_every_n_steps_equal_to_evaluating_the_checkpoint_and_leaves_training_alone(tmp_path):
    tasks = write_tasks(tmp_path / "tasks")
    with_eval, without = tmp_path / "with", tmp_path / "without"
    train(compose_train(with_eval, *REAL, *zero_shot(tasks), "callbacks.zero_shot.every_n_steps=4"))
    train(compose_train(without, *REAL))
    perplexity = logged(with_eval, "zeroshot/tiny_cloze/perplexity")
    assert sorted(perplexity) == [4, 8, 10]  # every 4 optimizer steps, and once when training ends
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(
            "eval",
            overrides=[
                f"ckpt_path={with_eval / 'checkpoints' / 'last.ckpt'}",
                "tasks=[tiny_cloze]",
                f"include_path={tasks}",
            ],
        )
    final = {(r["task"], r["metric"]): r["value"] for r in evaluate(cfg)["rows"]}
    assert perplexity[10] == pytest.approx(final[("tiny_cloze", "perplexity")], rel=1e-5)
    a = torch.load(with_eval / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(without / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in b)  # dropout 0.1 and random-LTD: the same trajectory
    assert logged(with_eval, "val/loss") == logged(without, "val/loss")


def test_an_unknown_task_stops_the_run_before_it_trains(tmp_path):
    tasks = write_tasks(tmp_path / "tasks")
    with pytest.raises(Exception, match=r"callbacks\.zero_shot\.tasks: 'tiny_clozz' is not a task") as info:
        train(
            compose_train(
                tmp_path / "run", "callbacks.zero_shot.tasks=[tiny_clozz]", f"callbacks.zero_shot.include_path={tasks}"
            )
        )
    assert "\n" not in str(info.value)
    assert not list((tmp_path / "run").rglob("*.ckpt"))


def test_a_tokenizer_without_an_end_token_stops_the_run_before_it_trains(tmp_path):
    """The harness conditions empty contexts and stops generation on it: checked at setup, and
    ``eot_token_id`` names one."""
    from ..conftest import make_tokenizer

    tasks = write_tasks(tmp_path / "tasks")
    bare = make_tokenizer(tmp_path / "bare")  # no special tokens at all
    settings = [*zero_shot(tasks), f"data.tokenizer={bare}", "trainer.max_steps=2"]
    with pytest.raises(Exception, match=r"callbacks\.zero_shot\.tokenizer .*no end-of-text token") as info:
        train(compose_train(tmp_path / "run", *settings))
    assert "\n" not in str(info.value) and not list((tmp_path / "run").rglob("*.ckpt"))
    summary = train(compose_train(tmp_path / "named", *settings, "callbacks.zero_shot.eot_token_id=0"))
    assert summary["steps"] == 2
