"""Vocabulary rarity per block against a plain-Python computation on a small corpus."""

import json
import math
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

from lightning_ltd.data.prepare import prepare
from lightning_ltd.data.rarity import block_rarity, easiest_first, rarity_file, unigram_log_probs, write_rarity
from lightning_ltd.data.shards import read_meta
from lightning_ltd.data.tokens import ShardBlocks
from lightning_ltd.errors import DataError


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    """Three shards of bytes: common words, then rarer text, so rarities differ."""
    root = tmp_path_factory.mktemp("rarity")
    text = root / "corpus.txt"
    text.write_text("the the the cat sat. " * 300 + "zyzzyva quixotic jackdaw fjord! " * 80 + "the cat. " * 200)
    prepare([str(text)], str(root / "shards"), val_fraction=0.1, shard_tokens=3000, progress=False)
    return root / "shards"


def plain_rarities(folder, width):
    meta = read_meta(str(folder))
    tokens = [int(t) for shard in meta["train"] for t in np.fromfile(folder / shard["file"], dtype=meta["dtype"])]
    counts, total = Counter(tokens), len(tokens)
    blocks = ShardBlocks(folder, meta["train"], meta["dtype"], width)
    return [sum(-math.log(counts[t] / total) for t in blocks.tokens(i)) / width for i in range(len(blocks))]


@pytest.mark.parametrize("width", [33, 129])
def test_rarities_equal_a_plain_python_count(shards, width):
    expected = plain_rarities(shards, width)
    assert len(read_meta(str(shards))["train"]) > 1  # blocks never straddle shards
    for chunk in (7, 1000, 1 << 20):  # the chunk read at a time does not change a score
        scores = block_rarity(shards, width, chunk_tokens=chunk)
        assert scores.dtype == np.float32 and len(scores) == len(expected)
        np.testing.assert_allclose(scores, expected, rtol=1e-5)
    assert scores.max() > scores.min()  # the rare words' blocks score higher


def test_log_probs_sum_to_one_over_the_training_split(shards):
    log_p = unigram_log_probs(shards)
    assert math.isclose(float(np.exp(log_p).sum()), 1.0, rel_tol=1e-9)


@pytest.mark.slow  # a process of its own: about 7 s
def test_the_command_writes_the_scores_whole_beside_the_shards(shards):
    done = subprocess.run(
        [sys.executable, "-m", "lightning_ltd.data.rarity", str(shards), "--width", "33", "--quiet"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0 and "blocks, rarity" in done.stdout
    written = np.load(rarity_file(shards, 33))
    np.testing.assert_array_equal(written, block_rarity(shards, 33))
    assert not list(shards.glob("*.partial"))
    assert write_rarity(shards, 33, progress=False) == rarity_file(shards, 33)


def test_bad_input_is_one_line(tmp_path, shards):  # the command's own: tests/test_commands.py
    with pytest.raises(DataError, match="no such directory"):
        block_rarity(tmp_path / "nope", 33)
    with pytest.raises(DataError, match="width=0 must be a positive number"):
        block_rarity(shards, 0)


def sampled(order, pool, served=0, rank=0, replicas=1, seed=3, epoch=0):
    from lightning_ltd.data.rarity import EasiestFirstSampler

    sampler = EasiestFirstSampler(order, pool, seed=seed, num_replicas=replicas, rank=rank)
    sampler.epoch, sampler.served = epoch, served
    return list(sampler)


def test_the_pool_grows_from_the_start_share_and_holds_a_global_batch():
    from lightning_ltd.data.rarity import RarityPool

    pool = RarityPool(blocks=1000, global_batch=8, start_percent=1, steps=100, root_degree=2)
    # step t draws from the percentile of t + 1: floor(1 + 99 * sqrt((t + 1) / 100)) % of the blocks
    assert pool(0) == 100 and pool(8 * 99) == 1000 and pool(8 * 24) == 500 and pool(8 * 24 + 7) == 500
    assert [pool(8 * s) for s in range(120)] == sorted(pool(8 * s) for s in range(120))
    assert RarityPool(blocks=1000, global_batch=64, start_percent=1, steps=100)(0) == 64  # never below a batch


def test_a_fixed_pool_serves_each_of_the_easiest_blocks_once_before_any_repeats():
    from lightning_ltd.data.rarity import RarityPool

    order = np.random.default_rng(0).permutation(500)  # easiest first
    pool = RarityPool(blocks=500, global_batch=4, start_percent=10, steps=10**9)  # 50 blocks for the whole epoch
    served = sampled(order, pool)
    assert len(served) == 500
    for window in range(0, 500, 50):
        assert sorted(served[window : window + 50]) == sorted(order[:50].tolist())


def test_ranks_are_disjoint_in_every_step_and_together_the_single_rank_order():
    from lightning_ltd.data.rarity import RarityPool

    order = np.arange(400)[::-1].copy()
    pool = RarityPool(blocks=400, global_batch=8, start_percent=5, steps=30, root_degree=2)
    alone = sampled(order, pool)
    ranks = [sampled(order, pool, rank=r, replicas=2) for r in range(2)]
    assert [x for pair in zip(*ranks, strict=True) for x in pair] == alone
    for step in range(len(alone) // 8):
        assert len(set(alone[8 * step : 8 * step + 8])) == 8


def test_a_resume_mid_epoch_continues_the_same_order_across_epochs():
    from lightning_ltd.data.rarity import RarityPool

    order = np.random.default_rng(1).permutation(300)
    pool = RarityPool(blocks=300, global_batch=6, start_percent=2, steps=70)
    for epoch in (0, 1):
        whole = sampled(order, pool, epoch=epoch)
        assert sampled(order, pool, served=120, epoch=epoch) == whole[120:]
    assert sampled(order, pool, epoch=1) != sampled(order, pool, epoch=0)  # the epoch reshuffles


def corpus_copy(shards, tmp_path, text: str | None = None):
    """The fixture's corpus prepared again in a folder of this test's (``text``: other text, over it)."""
    source = tmp_path / "corpus.txt"
    source.write_text(text or (shards.parent / "corpus.txt").read_text())
    out = str(tmp_path / "shards")
    prepare([str(source)], out, val_fraction=0.1, shard_tokens=3000, progress=False, overwrite=text is not None)
    return tmp_path / "shards"


def test_scores_of_a_corpus_prepared_again_are_refused_naming_both_files(shards, tmp_path):
    folder = corpus_copy(shards, tmp_path)
    write_rarity(folder, 33, progress=False)
    blocks = len(ShardBlocks(folder, read_meta(str(folder))["train"], "uint8", 33))
    assert len(easiest_first(folder, 33, blocks)) == blocks
    same_size = (shards.parent / "corpus.txt").read_text().replace("cat", "dog")  # as many blocks, other text
    scores = {p.name: p.read_bytes() for p in folder.glob("rarity-33.*")}
    (tmp_path / "corpus.txt").write_text(same_size)
    prepare(
        [str(tmp_path / "corpus.txt")], str(folder), val_fraction=0.1, shard_tokens=3000, progress=False, overwrite=True
    )
    for name, data in scores.items():
        (folder / name).write_bytes(data)
    with pytest.raises(DataError, match=r"rarity-33.npy'?: scored from another corpus than .*meta.json"):
        easiest_first(folder, 33, blocks)


@pytest.mark.parametrize("damage", ["cut", "no record"])
def test_cut_or_unrecorded_scores_are_one_line_naming_the_file(shards, tmp_path, damage):
    folder = corpus_copy(shards, tmp_path)
    written = write_rarity(folder, 33, progress=False)
    if damage == "cut":
        written.write_bytes(written.read_bytes()[:-40])
    else:
        written.with_suffix(".json").unlink()
    expected = "unreadable" if damage == "cut" else "records no source corpus"
    with pytest.raises(DataError, match=f"rarity-33.npy'?: {expected}.*score it again: python -m"):
        easiest_first(folder, 33, 10**6)


def test_ids_beyond_the_declared_vocabulary_are_one_line_naming_the_shard(shards, tmp_path):
    folder = corpus_copy(shards, tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "vocab_size": 10}))
    with pytest.raises(DataError, match=r"token id \d+ at token 0 is not below the vocabulary size 10"):
        write_rarity(folder, 33, progress=False)
    assert not list(folder.glob("rarity-*"))
