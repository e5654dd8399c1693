"""The sequence-length curriculum: its schedule's shape, and a composed run (curriculum +
random-LTD) against a hand count of its lengths and layer-tokens. ``test_curriculum_reference``
compares the schedules with DeepSpeed's own code."""

import csv

import pytest
import torch

from lightning_ltd.callbacks import Curriculum
from lightning_ltd.cli import ConfigError, build, train
from lightning_ltd.data.curriculum import SeqLenSchedule
from lightning_ltd.ltd.schedule import kept_tokens, mslg_keep
from tests.conftest import compose_train


def test_lengths_never_fall_below_the_start_nor_shrink():
    """A start off the grid (20 with 8) is not rounded below itself; the length only grows."""
    schedule = SeqLenSchedule(20, 100, 3000, granularity=8, shape="root", root_degree=2)
    lengths = [schedule.length_at(t) for t in range(3010)]
    assert lengths[0] == 20 and lengths[-1] == 100 and lengths == sorted(lengths)
    assert all(length % 8 == 0 for length in lengths if length not in (20, 100))


def test_data_saving_is_the_share_of_tokens_the_lengths_left_out():
    schedule = SeqLenSchedule(8, 32, 4, granularity=4)
    lengths = [schedule.length_at(t) for t in range(6)]
    assert lengths == [12, 20, 24, 32, 32, 32]  # step t trains at the schedule's value for t + 1
    assert schedule.data_saving(6) == pytest.approx(1 - sum(lengths) / (6 * 32))


def logged(run_dir, key):
    with open(next(run_dir.rglob("metrics.csv"))) as metrics:
        return {int(r["step"]): float(r[key]) for r in csv.DictReader(metrics) if r.get(key)}


CURRICULUM = ["curriculum=seqlen", "curriculum.min_len=8", "curriculum.steps=12", "curriculum.granularity=4"]


@pytest.mark.parametrize("ltd", ["on", "off"])
def test_a_composed_run_counts_layer_tokens_at_the_truncated_lengths(tmp_path, ltd):
    """Hand count: step t reads rows of length len(t); a dropping layer keeps min(keep(t), len(t))."""
    steps, rows, n_layer, dropping = 16, 8, 3, 1  # TINY: layers 0..2, the middle one drops
    summary = train(compose_train(tmp_path, *CURRICULUM, f"ltd={ltd}", f"trainer.max_steps={steps}"))
    schedule = SeqLenSchedule(8, 32, 12, granularity=4)
    expected = 0
    for t in range(steps):
        length = schedule.length_at(t)
        keep = mslg_keep(t, 8, 32, 20, 4) if ltd == "on" else None
        expected += rows * (kept_tokens(keep, length) * dropping + length * (n_layer - dropping))
    assert summary["layer_tokens"] == expected
    assert summary["full_layer_tokens"] == sum(rows * schedule.length_at(t) * n_layer for t in range(steps))
    assert summary["data_saving"] == pytest.approx(schedule.data_saving(steps))
    assert logged(tmp_path, "train/seq_len") == {t: float(schedule.length_at(t)) for t in range(steps)}
    assert logged(tmp_path, "train/layer_tokens")[steps - 1] == expected  # the ledger, as logged


def test_the_scheduled_layer_tokens_follow_the_truncated_lengths(tmp_path):
    """The LayerToken LR's progress (scheduled layer-tokens) is the ledger's count, step by step."""
    cfg = compose_train(tmp_path, *CURRICULUM, "trainer.max_steps=10")
    module, datamodule, trainer = build(cfg)
    from lightning_ltd.cli import run

    summary = run(cfg, module, datamodule, trainer)
    scheduled = trainer.callbacks[0].driver.scheduled
    assert scheduled.before(10) == summary["layer_tokens"]


def test_validation_reads_whole_sequences(tmp_path):
    """The pre-fit validation of the same initial weights is the same with and without it."""
    runs = [
        train(compose_train(tmp_path / name, *extra, "trainer.max_steps=2"))
        for name, extra in (("plain", []), ("curriculum", CURRICULUM))
    ]
    assert runs[0]["val/loss_start"] == runs[1]["val/loss_start"]


def test_masked_lm_batches_are_cut_row_aligned():
    from lightning_ltd.modules import BERTModule

    module = BERTModule(vocab_size=64, n_layer=3, n_embd=32, n_head=2, block_size=32)
    batch = {
        "input_ids": torch.ones(2, 20, dtype=torch.long),
        "attention_mask": torch.ones(2, 20),
        "labels": torch.full((2, 20), -100),
    }
    cut = module.truncate(batch, 8)
    assert {key: tuple(value.shape) for key, value in cut.items()} == {k: (2, 8) for k in batch}
    assert module.token_shape(cut) == (2, 8)


@pytest.mark.slow  # about 1.4 s
@pytest.mark.parametrize(
    "overrides, message",
    [
        (["experiment=vit_digits", "curriculum=seqlen"], "curriculum.seqlen: ViTModule's batches cannot be truncated"),
        (["curriculum=seqlen", "curriculum.min_len=64"], "curriculum.min_len=64 exceeds the sequence length 32"),
        (["curriculum=seqlen", "curriculum.min_len=0"], "curriculum.min_len=0 must be a positive integer"),
        (["curriculum=seqlen", "curriculum.schedule=cubic"], "curriculum.schedule='cubic' must be one of"),
        (["curriculum=seqlen", "curriculum.min_len=16", "curriculum.max_len=8"], "min_len=16 must be <= max_len=8"),
    ],
)
def test_bad_curriculum_settings_are_one_line(tmp_path, overrides, message):
    tiny = not any(item.startswith("experiment=") for item in overrides)  # TINY's keys are the GPT's
    with pytest.raises(ConfigError) as err:
        build(compose_train(tmp_path, *overrides, tiny=tiny))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_off_is_the_default_and_cuts_nothing(tmp_path):
    _, _, trainer = build(compose_train(tmp_path))
    curriculum = next(c for c in trainer.callbacks if isinstance(c, Curriculum))
    assert curriculum.seqlen is False and curriculum.resolve(32) is None


def test_a_checkpoint_from_before_the_curriculum_group_resumes_as_curriculum_off():
    """Its fingerprint has no curriculum key: it ran without one, so ``curriculum=off`` (the
    default) resumes it and ``curriculum=seqlen`` is a difference."""
    from lightning_ltd.checks.fingerprint import fingerprint_problems

    off = {"model.n_layer": 3, "curriculum._target_": "lightning_ltd.callbacks.Curriculum", "curriculum.seqlen": False}
    earlier = {"model.n_layer": 3}
    assert fingerprint_problems(earlier, off) == []
    on = {**off, "curriculum.seqlen": True, "curriculum.min_len": 16}
    (problem,) = fingerprint_problems(earlier, on)
    assert "curriculum.seqlen: False -> True" in problem and "curriculum.min_len: None -> 16" in problem


def test_a_data_modules_own_batch_hook_still_runs(tmp_path):
    """Lightning calls only the module's ``on_after_batch_transfer`` when both have one: ours
    runs the data module's first."""
    cfg = compose_train(tmp_path, *CURRICULUM, "trainer.max_steps=3", "validate_before_fit=false")
    module, datamodule, trainer = build(cfg)
    seen = []

    def own_hook(batch, dataloader_idx):
        seen.append(batch.shape[1])
        return batch

    datamodule.on_after_batch_transfer = own_hook
    from lightning_ltd.cli import run

    run(cfg, module, datamodule, trainer)
    assert seen[:3] == [33, 33, 33]  # whole blocks reach the data module's hook, then the cut


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """Byte shards of a corpus whose second half uses rare words, scored for 33-token blocks."""
    from lightning_ltd.data.prepare import prepare
    from lightning_ltd.data.rarity import write_rarity

    root = tmp_path_factory.mktemp("scored")
    text = root / "corpus.txt"
    text.write_text("the cat sat on the mat. " * 600 + "quixotic zyzzyva jackdaws vex my fjord! " * 300)
    prepare([str(text)], str(root / "shards"), val_fraction=0.1, progress=False)
    write_rarity(root / "shards", 33, progress=False)
    return root / "shards"


def tokens_run(folder, *overrides):
    from tests.conftest import QUICK

    small = ["model.n_layer=3", "model.n_embd=32", "model.n_head=2", "data.block_size=32", "data.batch_size=8"]
    ltd = ["ltd.min_keep=8", "ltd.ramp_steps=20", "ltd.granularity=4", "lr.warmup_steps=2"]
    return ["data=tokens", f"data.path={folder}", *small, *ltd, *QUICK, *overrides]


def test_the_first_batches_come_from_the_easiest_blocks(tmp_path, scored):
    import numpy as np

    cfg = compose_train(tmp_path, *tokens_run(scored), tiny=False)
    _, datamodule, _ = build(cfg)
    datamodule.use_rarity(start_percent=10, steps=10**6, root_degree=2)
    from lightning_ltd.data.rarity import unigram_log_probs

    scores = np.sort(np.load(scored / "rarity-33.npy"))
    ceiling = scores[int(0.1 * len(scores)) - 1]  # the hardest of the easiest 10 %
    log_p = unigram_log_probs(scored)
    batch = next(iter(datamodule.train_dataloader()))
    rarities = [float(-log_p[row.numpy()].mean()) for row in batch]
    assert max(rarities) <= ceiling + 1e-5 < scores[-1]  # the rare half is not served yet


@pytest.mark.slow  # about 1.5 s
@pytest.mark.parametrize("option", ["rarity", "seqlen_rarity"])
def test_train_py_runs_the_rarity_curricula_and_logs_the_share(tmp_path, scored, option):
    overrides = [f"curriculum={option}", "curriculum.rarity_steps=4", "trainer.max_steps=6"]
    overrides += ["curriculum.min_len=8"] if option == "seqlen_rarity" else []
    summary = train(compose_train(tmp_path, *tokens_run(scored, *overrides), tiny=False))
    assert summary["steps"] == 6
    shares = logged(tmp_path, "train/rarity_fraction")
    from lightning_ltd.data.curriculum import rarity_percent

    assert shares == pytest.approx({t: rarity_percent(t, 1, 4, 2) / 100 for t in range(6)}) and shares[0] == 0.5
    assert ("data_saving" in summary) == (option == "seqlen_rarity")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["curriculum=rarity"], "curriculum.rarity: TextDataModule has no rarity scores (use data=tokens"),
        (["curriculum=rarity", "data.block_size=16"], "no rarity-17.npy for the rarity curriculum: run python -m"),
    ],
)
def test_a_rarity_curriculum_without_scores_is_one_line(tmp_path, scored, overrides, message):
    base = compose_train(tmp_path, *overrides) if "data.block_size=16" not in overrides else None
    cfg = base or compose_train(tmp_path, *tokens_run(scored, *overrides), tiny=False)
    with pytest.raises(ConfigError) as err:
        build(cfg)
    assert message in str(err.value) and "\n" not in str(err.value)
