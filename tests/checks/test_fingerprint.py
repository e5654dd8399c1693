"""A resume is refused, in one line listing every key, when the new run changes its trajectory;
allowed changes, and the same data at another path, resume."""

import shutil

import pytest
import torch

from lightning_ltd.checks.fingerprint import CHECKPOINT_KEY, RunFingerprint, content_fingerprint
from lightning_ltd.cli import ConfigError, build, train
from tests.conftest import compose_train

COMMON = ["lr.total_steps=12", "callbacks.model_checkpoint.every_n_train_steps=6", "ltd.ramp_steps=8"]


@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """A 6-step run on a text file of its own, and its checkpoint."""
    folder = tmp_path_factory.mktemp("fingerprinted")
    corpus = folder / "corpus.txt"
    corpus.write_text("the quick brown fox jumps over the lazy dog, again and again.\n" * 2000)
    train(compose_train(folder / "run", *COMMON, f"data.path={corpus}", "trainer.max_steps=6"))
    return corpus, folder / "run" / "checkpoints" / "last.ckpt"


def resume(tmp_path, corpus, checkpoint, *overrides):
    return build(compose_train(tmp_path, *COMMON, f"data.path={corpus}", f"ckpt_path={checkpoint}", *overrides))


@pytest.mark.parametrize(
    ("overrides", "listed"),
    [
        (["ltd.ramp_steps=9"], "ltd.ramp_steps: 8 -> 9"),
        pytest.param(["ltd.min_keep=16"], "ltd.min_keep: 8 -> 16", marks=pytest.mark.slow),
        pytest.param(["ltd=off"], "ltd.enabled: True -> False", marks=pytest.mark.slow),
        (["lr=step_cosine"], "lr._target_: 'lightning_ltd.ltd.LayerTokenLR' -> 'lightning_ltd.ltd.StepLR'"),
        pytest.param(["lr.min_lr=1e-5"], "lr.min_lr:", marks=pytest.mark.slow),
        (["data.batch_size=4"], "data.batch_size: 8 -> 4"),
        pytest.param(["model.dropout=0.1"], "model.dropout: 0.0 -> 0.1", marks=pytest.mark.slow),
        (["seed=5"], "seed: 1234 -> 5"),
        pytest.param(
            ["+trainer.accumulate_grad_batches=2"], "trainer.accumulate_grad_batches: 1 -> 2", marks=pytest.mark.slow
        ),
        (["model.dropout=0.1", "ltd.min_keep=16"], "ltd.min_keep: 8 -> 16, model.dropout: 0.0 -> 0.1"),
    ],
)
def test_a_resume_that_changes_the_trajectory_is_refused_listing_every_key(tmp_path, corpus_run, overrides, listed):
    corpus, checkpoint = corpus_run
    with pytest.raises(ConfigError) as err:
        resume(tmp_path, corpus, checkpoint, *overrides)
    message = str(err.value)
    assert "this run differs from the checkpoint's in" in message and listed in message and "\n" not in message


@pytest.mark.parametrize(
    "overrides",
    [
        ["trainer.max_steps=12"],
        ["trainer.max_steps=20", "data.num_workers=1", "trainer.log_every_n_steps=3"],
        ["callbacks.model_checkpoint.every_n_train_steps=2", "trainer.val_check_interval=4"],
    ],
)
def test_allowed_changes_resume(tmp_path, corpus_run, overrides):
    """They build, carry the checkpoint's own fingerprint on, and take effect."""
    corpus, checkpoint = corpus_run
    _, datamodule, trainer = resume(tmp_path, corpus, checkpoint, *overrides)
    carried = next(c for c in trainer.callbacks if isinstance(c, RunFingerprint)).fingerprint
    assert carried == torch.load(checkpoint, weights_only=True)[CHECKPOINT_KEY]
    settings = {o.split("=")[0]: float(o.split("=")[1]) for o in overrides}
    found = {
        "trainer.max_steps": trainer.max_steps,
        "trainer.log_every_n_steps": trainer.log_every_n_steps,
        "trainer.val_check_interval": trainer.val_check_interval,
        "data.num_workers": datamodule.num_workers,
        "callbacks.model_checkpoint.every_n_train_steps": trainer.checkpoint_callback._every_n_train_steps,
    }
    assert {key: found[key] for key in settings} == settings


def test_the_same_data_elsewhere_resumes_and_other_data_in_place_does_not(tmp_path, corpus_run):
    corpus, checkpoint = corpus_run
    copy = tmp_path / "moved" / "corpus.txt"
    copy.parent.mkdir()
    shutil.copy(corpus, copy)
    resume(tmp_path / "a", copy, checkpoint)
    swapped = tmp_path / "swapped.txt"
    swapped.write_text(corpus.read_text().upper())
    assert swapped.stat().st_size == corpus.stat().st_size  # same size, other content
    with pytest.raises(ConfigError, match=r"data\.content: '[0-9a-f]+' -> '[0-9a-f]+'"):
        resume(tmp_path / "b", swapped, checkpoint)


def test_a_folder_fingerprint_follows_names_sizes_and_sampled_bytes_not_the_location(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name / "sub").mkdir(parents=True)
        (tmp_path / name / "meta.json").write_text('{"x": 1}')
        (tmp_path / name / "sub" / "shard.bin").write_bytes(b"\x01" * 300_000)
    assert content_fingerprint(tmp_path / "a") == content_fingerprint(tmp_path / "b")
    (tmp_path / "b" / "sub" / "shard.bin").write_bytes(b"\x01" * 299_999 + b"\x02")  # the last byte
    assert content_fingerprint(tmp_path / "a") != content_fingerprint(tmp_path / "b")
    (tmp_path / "b" / "meta.json").write_text('{"x": 2}')
    assert content_fingerprint(tmp_path / "a") != content_fingerprint(tmp_path / "b")


def test_a_trainer_default_written_out_is_no_difference():
    """``+trainer.accumulate_grad_batches=1`` is Lightning's default: the same run as leaving it out
    (checkpoints of earlier versions recorded None for it)."""
    from lightning_ltd.checks.fingerprint import fingerprint_problems

    unset = {"trainer.accumulate_grad_batches": None, "model.lr": 0.1}
    assert fingerprint_problems(unset, {**unset, "trainer.accumulate_grad_batches": 1}) == []
    (problem,) = fingerprint_problems(unset, {**unset, "trainer.accumulate_grad_batches": 2})
    assert "trainer.accumulate_grad_batches: 1 -> 2" in problem
