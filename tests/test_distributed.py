"""A 2-process CPU DDP run (gloo) through ``python train.py trainer=ddp_cpu``: ranks drop
different tokens and read different data, while the kept length, the layer-token ledger and
the learning rate agree; resuming from a checkpoint continues every rank exactly."""

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]


def ddp_command(run_dir: Path, *overrides: str, base: tuple[str, ...] = tuple(TINY)) -> list[str]:
    """``python train.py trainer=ddp_cpu`` (2 ranks unless ``trainer.devices`` overrides it),
    4 short steps with a checkpoint every 2 and a ``RankProbe`` under ``run_dir/probe``; later
    overrides win."""
    return [
        sys.executable,
        "train.py",
        "trainer=ddp_cpu",
        *base,
        "trainer.max_steps=4",
        "lr.warmup_steps=1",
        "trainer.val_check_interval=4",
        "callbacks.model_checkpoint.every_n_train_steps=2",
        "callbacks.model_checkpoint.save_top_k=-1",
        "+callbacks.probe._target_=tests.helpers.rank_probe.RankProbe",
        f"+callbacks.probe.out_dir={run_dir / 'probe'}",
        f"hydra.run.dir={run_dir}",
        *overrides,
    ]


def train_ddp(run_dir: Path, *overrides: str, base: tuple[str, ...] = tuple(TINY)) -> list[list[dict]]:
    """A ``ddp_command`` run that must succeed: each rank's probe rows (an empty list for a rank
    that did not run)."""
    probe = run_dir / "probe"
    subprocess.run(ddp_command(run_dir, *overrides, base=base), cwd=ROOT, check=True, timeout=240, capture_output=True)
    return [json.loads(path.read_text()) if (path := probe / f"rank{r}.json").exists() else [] for r in range(2)]


@pytest.mark.slow
def test_ddp_ranks_differ_where_they_should_and_agree_where_they_must(tmp_path):
    rank0, rank1 = train_ddp(tmp_path / "straight")
    assert [r["step"] for r in rank0] == [1, 2, 3, 4]
    for a, b in zip(rank0, rank1, strict=True):
        assert a["keep"] == b["keep"] and a["lr"] == b["lr"] and a["layer_tokens"] == b["layer_tokens"]
        assert a["indices"] != b["indices"]  # different tokens dropped on each rank
        assert a["batch_first_tokens"] != b["batch_first_tokens"]  # and different data
    assert rank0[0]["layer_tokens"] == 2 * 8 * (8 * 1 + 32 * 2)  # both ranks counted: keep 8 in 1 of 3 layers
    with open(next((tmp_path / "straight").rglob("metrics.csv"))) as metrics:
        rows = [r for r in csv.DictReader(metrics) if r["train/layer_tokens"]]
    logged = {int(r["step"]): float(r["train/layer_tokens"]) for r in rows}
    assert logged == {r["step"] - 1: r["layer_tokens"] for r in rank0}  # the logged ledger is the sum over ranks

    checkpoint = tmp_path / "straight" / "checkpoints" / "step_0000002.ckpt"
    resumed = train_ddp(tmp_path / "resumed", f"ckpt_path={checkpoint}")
    for straight, again in zip((rank0, rank1), resumed, strict=True):
        assert again == straight[2:]  # steps 3 and 4: same tokens, data, LR, ledger and losses


@pytest.mark.slow  # one 2-rank and one 1-rank run: about 25 s
def test_validation_is_sharded_over_ranks_and_its_reduced_metrics_equal_one_rank(tmp_path):
    """Each rank evaluates its half of the validation set; the reduced val/loss and val/ppl
    (at the pre-fit validation, identical weights) equal one rank evaluating all of it."""
    whole = ("trainer.max_steps=1", "trainer.limit_val_batches=1.0")
    two = train_ddp(tmp_path / "two", *whole)
    one = train_ddp(tmp_path / "one", *whole, "trainer.devices=1")
    assert two[1] and not one[1]
    rows = [
        json.loads((tmp_path / run / "probe" / f"rank{r}.val.json").read_text())["rows"]
        for run, r in (("two", 0), ("two", 1), ("one", 0))
    ]
    assert rows[0] == rows[1] and rows[0] + rows[1] == rows[2]  # halves (this validation set is even)

    def first_validation(run):
        with open(next((tmp_path / run).rglob("metrics.csv"))) as metrics:
            row = next(r for r in csv.DictReader(metrics) if r.get("val/loss"))
        return float(row["val/loss"]), float(row["val/ppl"])

    (loss_two, ppl_two), (loss_one, ppl_one) = first_validation("two"), first_validation("one")
    assert loss_two == pytest.approx(loss_one, rel=1e-6) and ppl_two == pytest.approx(ppl_one, rel=1e-6)
    assert ppl_one == pytest.approx(math.exp(loss_one), rel=1e-6)


def epoch_of_64_blocks(tmp_path: Path) -> tuple[tuple[str, ...], dict]:
    """Token shards of 64 training blocks of 33 tokens (one epoch: 8 batches of 8 rows), and
    each block's index by content."""
    import json as json_module

    from lightning_ltd.data.prepare import prepare
    from lightning_ltd.data.text import default_corpus
    from lightning_ltd.data.tokens import ShardBlocks

    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(default_corpus(4166))  # 2,048 val tokens (the first split unit) + 64 blocks of 33
    shards = tmp_path / "shards"
    prepare([str(corpus)], str(shards), val_fraction=0.01, progress=False)
    meta = json_module.loads((shards / "meta.json").read_text())
    blocks = ShardBlocks(shards, meta["train"], meta["dtype"], 33)
    index_of = {tuple(blocks[i].tolist()): i for i in range(len(blocks))}
    assert len(blocks) == 64 == len(index_of)
    data = [o for o in TINY if not o.startswith("data.max_bytes")]
    return (
        *data,
        "data=tokens",
        f"data.path={shards}",
        "data.num_workers=1",
        "+callbacks.probe.record_batches=true",
    ), index_of


def blocks_seen(rows: list[dict], index_of: dict) -> list[int]:
    return [index_of[tuple(row)] for step in rows for row in step["batch"]]


@pytest.mark.slow
def test_ddp_ranks_read_disjoint_blocks_that_cover_the_epoch(tmp_path):
    data, index_of = epoch_of_64_blocks(tmp_path)
    ranks = train_ddp(tmp_path / "run", "trainer.max_steps=4", base=data)  # one epoch: 2 ranks x 8 rows x 4 steps
    seen = [blocks_seen(rows, index_of) for rows in ranks]
    assert not set(seen[0]) & set(seen[1])  # disjoint
    assert sorted(seen[0] + seen[1]) == list(range(64))  # together: the whole epoch, once


@pytest.mark.slow  # four short runs of 1 and 2 gloo ranks: about 60 s
@pytest.mark.parametrize(("before", "after", "saved_at"), [(2, 1, 1), (1, 2, 3)])
def test_a_resume_on_another_world_size_continues_the_epoch_the_lr_and_the_ledger(tmp_path, before, after, saved_at):
    """The epoch goes on with no block skipped or repeated; the ledger continues from the
    recorded count at the new global batch, and the LR moves on from where it was, no jump."""
    data, index_of = epoch_of_64_blocks(tmp_path)
    every = f"callbacks.model_checkpoint.every_n_train_steps={saved_at}"
    straight = train_ddp(tmp_path / "straight", f"trainer.devices={before}", every, base=data)[:before]
    checkpoint = tmp_path / "straight" / "checkpoints" / f"step_{saved_at:07d}.ckpt"
    steps_left = (64 - 8 * before * saved_at) // (8 * after)  # the rest of the epoch at the new world size
    resumed = train_ddp(
        tmp_path / "resumed",
        f"trainer.devices={after}",
        f"ckpt_path={checkpoint}",
        f"trainer.max_steps={saved_at + steps_left}",
        base=data,
    )[:after]
    before_resume = [i for rank in straight for i in blocks_seen(rank[:saved_at], index_of)]
    after_resume = [i for rank in resumed for i in blocks_seen(rank, index_of)]
    assert len(set(before_resume + after_resume)) == len(before_resume + after_resume)  # nothing twice
    assert 64 - len(before_resume) - len(after_resume) < 8 * after  # nothing skipped but the drop_last tail
    old_step = straight[0][saved_at]["layer_tokens"] - straight[0][saved_at - 1]["layer_tokens"]
    new_step = resumed[0][0]["layer_tokens"] - straight[0][saved_at - 1]["layer_tokens"]
    assert new_step * before == old_step * after  # the count goes on from the record, at the new batch
    lr_at_save, lr_next = straight[0][saved_at - 1]["lr"], straight[0][saved_at]["lr"]
    assert abs(resumed[0][0]["lr"] - lr_at_save) <= abs(lr_next - lr_at_save) * max(after / before, 1) + 1e-12


@pytest.mark.slow
def test_ddp_skips_a_bad_step_on_every_rank(tmp_path):
    """A NaN loss on rank 0 only: both ranks skip that step (the decision is reduced over
    ranks), neither hangs, and training goes on with finite losses on both."""
    bad = [
        "+callbacks.bad._target_=tests.helpers.poison.BadLossAt",
        "+callbacks.bad.steps=[1]",
        "+callbacks.bad.rank=0",
    ]
    rank0, rank1 = train_ddp(tmp_path, *bad, "callbacks.nonfinite_guard.skip_steps=1")
    assert [r["step"] for r in rank0] == [r["step"] for r in rank1] == [1, 2, 3, 4]
    assert math.isnan(rank0[1]["loss"]) and math.isfinite(rank1[1]["loss"])  # step 2 (index 1) was the bad one
    assert all(math.isfinite(r["loss"]) for rows in (rank0, rank1) for r in rows[2:])


def run_ddp_expecting_failure(run_dir: Path, *overrides: str) -> tuple[int, list[dict]]:
    """A 2-rank run that should stop: rank 0's exit code and what stopped each rank (after
    checking that no rank is left running, i.e. none hangs in a collective)."""
    import time

    probe = run_dir / "probe"
    command = ddp_command(run_dir, "trainer.max_steps=6", *overrides)
    result = subprocess.run(command, cwd=ROOT, timeout=240, capture_output=True, text=True)
    deadline = time.monotonic() + 30
    while len(list(probe.glob("rank*.error.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.5)
    errors = [json.loads((probe / f"rank{r}.error.json").read_text()) for r in range(2)]
    for error in errors:
        while time.monotonic() < deadline and running(error["pid"]):
            time.sleep(0.5)
        assert not running(error["pid"]), f"rank process {error['pid']} still runs: it hangs in a collective"
    return result.returncode, errors


def running(pid: int) -> bool:
    """Whether the process is alive (a zombie waiting to be reaped has exited)."""
    status = Path(f"/proc/{pid}/status")
    try:
        return "\tZ" not in next(line for line in status.read_text().splitlines() if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError):
        return False


def checkpoints_are_finite(run_dir: Path) -> list[str]:
    import torch

    names = []
    for path in sorted((run_dir / "checkpoints").glob("step_*.ckpt")):
        weights = torch.load(path, weights_only=True)["state_dict"]
        assert all(torch.isfinite(w).all() for w in weights.values() if w.is_floating_point()), path
        names.append(path.name)
    return names


@pytest.mark.slow
def test_a_nan_on_one_rank_stops_every_rank_at_once_before_the_due_checkpoint(tmp_path):
    """Rank 1 alone goes non-finite at step 3 (the one a checkpoint is due after): both ranks
    raise the same error with the same exit code, no rank hangs, and no checkpoint holds it.
    (A finite loss with an inf gradient takes the same reduced record: tests/callbacks/test_guard.py.)"""
    bad = [
        "+callbacks.bad._target_=tests.helpers.poison.BadLossAt",
        "+callbacks.bad.steps=[3]",
        "+callbacks.bad.rank=1",
    ]
    code, errors = run_ddp_expecting_failure(tmp_path, *bad, "trainer.log_every_n_steps=50")
    assert code == 3
    assert [e["type"] for e in errors] == ["NonFiniteLossError"] * 2
    assert errors[0]["message"] == errors[1]["message"] and "at optimizer step 3" in errors[0]["message"]
    assert checkpoints_are_finite(tmp_path) == ["step_0000002.ckpt"]  # step 4's was refused on both ranks


@pytest.mark.slow
def test_skip_mode_skips_one_ranks_nan_everywhere_and_stops_everywhere_past_the_bound(tmp_path):
    bad = ["+callbacks.bad._target_=tests.helpers.poison.BadLossAt", "+callbacks.bad.rank=1"]
    code, errors = run_ddp_expecting_failure(
        tmp_path, *bad, "+callbacks.bad.steps=[1,3]", "callbacks.nonfinite_guard.skip_steps=1"
    )
    assert code == 3 and [e["type"] for e in errors] == ["NonFiniteLossError"] * 2
    assert "optimizer step 3, after 1 skipped step(s) [1]" in errors[1]["message"]
    assert checkpoints_are_finite(tmp_path) == ["step_0000002.ckpt"]  # written after the skipped step 1


@pytest.mark.slow  # three 2-rank runs: about 40 s
def test_sigterm_on_the_launching_rank_checkpoints_every_rank_and_resumes_exactly(tmp_path):
    straight = train_ddp(tmp_path / "straight", "trainer.max_steps=6")
    term = [
        "+callbacks.term._target_=tests.helpers.signals.SignalAt",
        "+callbacks.term.step=2",
        "+callbacks.term.rank=0",
    ]
    every = ("callbacks.model_checkpoint.every_n_train_steps=100", "trainer.log_every_n_steps=2")
    command = ddp_command(tmp_path / "stopped", "trainer.max_steps=6", *every, *term)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    checkpoint = tmp_path / "stopped" / "checkpoints" / "last.ckpt"
    assert result.returncode == 143, result.stderr[-2000:]
    # signalled in step 3; the ranks agree at the next logging step (4), where they sync anyway
    assert result.stderr.strip().splitlines()[-1].startswith("error: stopped by SIGTERM at optimizer step 4")
    resumed = train_ddp(tmp_path / "resumed", "trainer.max_steps=6", f"ckpt_path={checkpoint}")
    for rows, again in zip(straight, resumed, strict=True):
        assert again == rows[4:]  # steps 5 and 6 on both ranks: same tokens, data, LR, ledger and losses


@pytest.mark.slow  # two 2-rank runs of a tiny Hugging Face Llama: about 50 s
def test_ddp_with_a_hugging_face_llama_differs_agrees_and_resumes_exactly(tmp_path):
    from lightning_ltd.pretrained.tiny import tiny_llama
    from tests.modules.test_hf import SMALL

    folder = tiny_llama(tmp_path / "llama")
    base = ("model=hf_causal_lm", f"model.pretrained={folder}", "model.dropout=0.1", *SMALL, "data.max_bytes=60000")
    rank0, rank1 = train_ddp(tmp_path / "straight", base=base)
    assert [r["step"] for r in rank0] == [1, 2, 3, 4]
    for a, b in zip(rank0, rank1, strict=True):
        assert a["keep"] == b["keep"] and a["lr"] == b["lr"] and a["layer_tokens"] == b["layer_tokens"]
        assert a["indices"] != b["indices"] and a["batch_first_tokens"] != b["batch_first_tokens"]
    checkpoint = tmp_path / "straight" / "checkpoints" / "step_0000002.ckpt"
    resumed = train_ddp(tmp_path / "resumed", f"ckpt_path={checkpoint}", base=base)
    for straight, again in zip((rank0, rank1), resumed, strict=True):
        assert again == straight[2:]  # steps 3 and 4 on both ranks: same tokens, data, LR, ledger and losses
