"""Vocabulary rarity of every training block of a prepared folder (DeepSpeed Data Efficiency's
``voc`` difficulty, arXiv 2212.03597): the mean negative log unigram probability of a block's
tokens, the unigram counts taken over the whole training split. A block of common tokens is
easy, one of rare tokens hard; the rarity curriculum serves the easiest blocks first.

    python -m lightning_ltd.data.rarity DIR --width 129     # blocks of data.block_size + 1 tokens

Computed once, at corpus scale, in two passes over the shards with flat memory (a bounded chunk
of tokens at a time through a memory map, plus one count per vocabulary entry); written beside
the shards as ``rarity-<width>.npy`` (float32, one score per block, in the order
``TokensDataModule`` numbers its blocks: shard by shard, non-overlapping blocks of ``width``).
"""

from __future__ import annotations

import hashlib
import io
import json
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lightning_ltd.checks.lock import writer_of
from lightning_ltd.console import CommandParser, boundary
from lightning_ltd.data.curriculum import rarity_percent
from lightning_ltd.data.loading import ResumableSampler
from lightning_ltd.data.shards import META, read_meta
from lightning_ltd.errors import DataError, first_line, writing
from lightning_ltd.ltd.keyed_hash import permuted_index

CHUNK_TOKENS = 1 << 24  # tokens read at a time (64 MiB of int32 ids at most)


def rarity_file(folder: str | Path, width: int) -> Path:
    """Where the scores of blocks of ``width`` tokens live."""
    return Path(folder).expanduser() / f"rarity-{width}.npy"


def _shards(folder: Path, meta: dict) -> Iterator[np.memmap]:
    for shard in meta["train"]:
        if shard["tokens"]:
            yield np.memmap(folder / shard["file"], dtype=meta["dtype"], mode="r", shape=(shard["tokens"],))


def unigram_log_probs(folder: str | Path, chunk_tokens: int = CHUNK_TOKENS, progress: bool = False) -> np.ndarray:
    """``log p(token)`` over the training split (float64, one per vocabulary entry; ``-inf`` for
    ids that never occur, which no training block then holds)."""
    root = Path(folder).expanduser()
    meta = read_meta(str(root))
    counts = np.zeros(meta["vocab_size"], dtype=np.int64)
    total = sum(s["tokens"] for s in meta["train"])
    with tqdm(total=total, unit="tok", unit_scale=True, desc="counting", file=sys.stderr, disable=not progress) as bar:
        for shard, tokens in zip((s for s in meta["train"] if s["tokens"]), _shards(root, meta), strict=True):
            for start in range(0, len(tokens), chunk_tokens):
                chunk = np.asarray(tokens[start : start + chunk_tokens])
                found = np.bincount(chunk, minlength=len(counts))
                if len(found) > len(counts):  # the same refusal as training's read of the block
                    first = int(np.argmax(chunk >= len(counts)))
                    raise DataError(
                        f"path={str(root / shard['file'])!r}: token id {int(chunk[first])} at token {start + first:,} "
                        f"is not below the vocabulary size {len(counts)} that meta.json declares"
                    )
                counts += found
                bar.update(len(chunk))
    with np.errstate(divide="ignore"):
        return np.log(counts / max(int(counts.sum()), 1))


def block_rarity(
    folder: str | Path, width: int, chunk_tokens: int = CHUNK_TOKENS, progress: bool = False
) -> np.ndarray:
    """The rarity of every training block of ``width`` tokens (float32), in block order."""
    if width < 1:
        raise DataError(f"width={width} must be a positive number of tokens")
    root = Path(folder).expanduser()
    meta = read_meta(str(root))
    scores = np.empty(sum(s["tokens"] // width for s in meta["train"]), dtype=np.float32)
    if not len(scores):
        longest = max((s["tokens"] for s in meta["train"]), default=0)
        raise DataError(
            f"width={width} is longer than every training shard of {folder} (the longest: {longest:,} tokens)"
        )
    log_p = unigram_log_probs(root, chunk_tokens, progress)
    blocks_per_chunk = max(1, chunk_tokens // width)
    done = 0
    with tqdm(total=len(scores), unit="block", desc="scoring", file=sys.stderr, disable=not progress) as bar:
        for tokens in _shards(root, meta):
            blocks = len(tokens) // width
            for first in range(0, blocks, blocks_per_chunk):
                count = min(blocks_per_chunk, blocks - first)
                ids = np.asarray(tokens[first * width : (first + count) * width]).reshape(count, width)
                scores[done : done + count] = -log_p[ids].mean(axis=1)
                done += count
                bar.update(count)
    return scores


def write_rarity(folder: str | Path, width: int, progress: bool = True) -> Path:
    """Score the folder's training blocks of ``width`` tokens and write ``rarity-<width>.npy``
    (whole, through a temporary name) with ``rarity-<width>.json``, the hash of the ``meta.json``
    it was scored from: scores of a corpus prepared again are refused, not silently reused."""
    read_meta(str(folder))  # a folder to score, before its lock is taken (which would create it)
    target = rarity_file(folder, width)
    with writer_of(folder, "folder"), writing(target):
        scores = block_rarity(folder, width, progress=progress)
        partial = target.with_name(target.name + ".partial")
        encoded = io.BytesIO()  # numpy's own file writer reports a refused write without its reason
        np.save(encoded, scores)
        partial.write_bytes(encoded.getvalue())
        partial.replace(target)
        source = {"meta_sha256": meta_hash(folder), "width": width, "blocks": len(scores)}
        target.with_suffix(".json").write_text(json.dumps(source))
    return target


def meta_hash(folder: str | Path) -> str:
    """The hash of a prepared folder's ``meta.json``, which holds every shard's content hash."""
    return hashlib.sha256((Path(folder).expanduser() / META).read_bytes()).hexdigest()


def easiest_first(folder: str | Path, width: int, blocks: int) -> np.ndarray:
    """Block indices from the easiest (lowest rarity) to the hardest, ties in block order, from
    the folder's ``rarity-<width>.npy``; one line naming the file if it is missing, unreadable or
    scored from another corpus."""
    file = rarity_file(folder, width)
    command = f"python -m lightning_ltd.data.rarity {folder} --width {width}"
    again = f"score it again: {command}"
    if not file.is_file():
        raise DataError(f"path={str(folder)!r}: no {file.name} for the rarity curriculum: run {command}")
    try:
        source = json.loads(file.with_suffix(".json").read_text())
        scores = np.load(file, mmap_mode="r")
    except FileNotFoundError:
        raise DataError(f"path={str(file)!r}: records no source corpus (an older scoring); {again}") from None
    except (OSError, ValueError, EOFError) as err:
        raise DataError(f"path={str(file)!r}: unreadable ({first_line(err)}); {again}") from None
    if not isinstance(source, dict) or source.get("meta_sha256") != meta_hash(folder):
        meta = Path(folder).expanduser() / META
        raise DataError(f"path={str(file)!r}: scored from another corpus than {meta} describes; {again}")
    if scores.ndim != 1 or len(scores) != blocks:
        raise DataError(f"path={str(file)!r}: {len(scores):,} scores for {blocks:,} training blocks; {again}")
    return np.argsort(scores, kind="stable")


@dataclass(frozen=True)
class RarityPool:
    """How many of the easiest blocks the sampler draws from at each position of the run: the
    first ``rarity_percent`` whole percentiles of the score-sorted blocks, as DeepSpeed's
    ``get_sample_based_on_metric_percentile`` cuts them (``blocks // 100`` per percentile, all
    of them at 100), growing from ``start_percent`` over ``steps`` optimizer steps; never fewer
    blocks than one global batch (so the ranks' rows of a step stay distinct). Positions count
    over the whole run (``epoch * blocks + position``) and map to steps by the global batch."""

    blocks: int
    global_batch: int
    start_percent: int
    steps: int
    root_degree: int = 1

    def percent_at(self, step: int) -> int:
        return rarity_percent(step, self.start_percent, self.steps, self.root_degree)

    def __call__(self, run_position: int) -> int:
        percent = self.percent_at(run_position // self.global_batch)
        wanted = self.blocks if percent == 100 else self.blocks // 100 * percent
        return min(self.blocks, max(min(self.global_batch, self.blocks), wanted))


class EasiestFirstSampler(ResumableSampler):
    """``ResumableSampler`` over the easiest ``pool(position)`` blocks: position ``p`` of an
    epoch's shared order is block ``order[perm(p mod n)]``, ``perm`` the epoch's keyed
    permutation of the ``n`` easiest. No index list is built (the order is the one array), the
    state is the same (epoch, positions served), so a resume is exact mid-epoch and on other
    world sizes, and consecutive positions under one pool never repeat a block."""

    def __init__(self, order: np.ndarray, pool: RarityPool, **kwargs: Any) -> None:
        super().__init__(len(order), **kwargs)
        self.order, self.pool = order, pool

    def index_at(self, shared: int, epoch: int, round_keys: tuple[int, ...]) -> int:
        size = self.pool(epoch * self.size + shared)
        return int(self.order[permuted_index(shared % size, size, round_keys)])


@boundary
def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser("lightning_ltd.data.rarity", __doc__)
    parser.add_argument("folder", help="a folder written by python -m lightning_ltd.data.prepare")
    parser.add_argument("--width", type=int, required=True, help="tokens per block: data.block_size + 1 for a GPT")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    written = write_rarity(args.folder, args.width, progress=not args.quiet)
    scores = np.load(written, mmap_mode="r")
    print(f"{written}: {len(scores):,} blocks, rarity {float(scores.min()):.3f} to {float(scores.max()):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
