"""Training on prepared token shards (``python -m lightning_ltd.data.prepare``): ``data=tokens``.

Blocks of ``block_size + 1`` tokens are cut from each shard without overlap; a block is read
with ``os.pread`` when it is needed, so resident memory stays flat whatever the corpus size and
any number of data workers can read at once. The training order is a pseudo-random permutation
per epoch, shared by all ranks and split among them (``ResumableSampler``); the loader's state
is (epoch, batches served), so a resumed run continues mid-epoch exactly.

The same shards serve a GPT (``[B, block_size + 1]`` token blocks) and a BERT (masked-LM dicts:
``[CLS] block [SEP]`` with BERT's 80/10/10 masking, whose random draws are a pure function of
(seed, epoch, sample index): different in every worker and epoch, the same after a resume).
"""

from __future__ import annotations

import bisect
import functools
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_ltd.checks.schema import Count, OpenFraction, PositiveInt, Seed, checked
from lightning_ltd.data.loading import ResumableDataLoader, resumable_train_loader, sharded_eval_loader
from lightning_ltd.data.mlm import Framed, MaskedRows, pad_batch
from lightning_ltd.data.shards import read_meta
from lightning_ltd.data.vocabulary import (
    MLM_VOCAB_SIZE,
    Vocabulary,
    masked_lm_vocabulary,
    shard_tokenizer,
    shard_vocabulary,
)
from lightning_ltd.errors import DataError

Objective = Literal["auto", "lm", "mlm"]


class OpenFiles:
    """At most ``limit`` read-only descriptors, the least recently used closed first.

    A corpus of hundreds of billions of tokens is over a thousand shards, and a shuffled order
    touches all of them in every worker: one descriptor per shard per worker passes the common
    limit of 1,024 open files. An ``open`` per miss costs microseconds next to the read.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: OrderedDict[str, int] = OrderedDict()

    def fd(self, file: str) -> int:
        if file in self._open:
            self._open.move_to_end(file)
            return self._open[file]
        while len(self._open) >= self.limit:
            os.close(self._open.popitem(last=False)[1])
        self._open[file] = os.open(file, os.O_RDONLY)
        return self._open[file]

    def close(self) -> None:
        while self._open:
            os.close(self._open.popitem()[1])

    def __len__(self) -> int:
        return len(self._open)


MAX_OPEN_SHARDS = 16
"""Descriptors each process (main or data worker) keeps open per dataset."""


class ShardBlocks(Dataset[Any]):
    """Non-overlapping blocks of ``width`` tokens from a list of shard files, read on demand
    through a bounded pool of open files (``max_open`` per process)."""

    def __init__(
        self,
        folder: Path,
        shards: list[dict[str, Any]],
        dtype: str,
        width: int,
        max_open: int = MAX_OPEN_SHARDS,
        vocab_size: int | None = None,
    ) -> None:
        self.files = [str(folder / s["file"]) for s in shards]
        self.dtype = np.dtype(dtype)
        self.width = width
        per_shard = [s["tokens"] // width for s in shards]
        self.starts = np.cumsum([0, *per_shard]).tolist()  # block index where each shard begins
        self.max_open = max_open
        self.vocab_size = vocab_size  # ids at or above it are refused as they are read
        self._files: OpenFiles | None = None
        self._pid = -1

    def __len__(self) -> int:
        return self.starts[-1]

    def tokens(self, index: int) -> np.ndarray:
        """Block ``index`` as int64 ``[width]``."""
        if not 0 <= index < len(self):
            raise IndexError(f"block {index} of {len(self)}")
        shard = bisect.bisect_right(self.starts, index) - 1
        offset = (index - self.starts[shard]) * self.width * self.dtype.itemsize
        size = self.width * self.dtype.itemsize
        raw = os.pread(self._fd(self.files[shard]), size, offset)
        if len(raw) != size:  # the shard changed under the run (checked whole when it was opened)
            raise DataError(
                f"path={self.files[shard]!r}: read {len(raw):,} of {size:,} bytes at byte {offset:,}: "
                "the shard was cut short after the run opened it"
            )
        block = np.frombuffer(raw, dtype=self.dtype).astype(np.int64)
        if self.vocab_size is not None and len(block) and int(block.max()) >= self.vocab_size:
            position = int(np.argmax(block >= self.vocab_size))
            at = offset // self.dtype.itemsize + position
            raise DataError(
                f"path={self.files[shard]!r}: token id {int(block[position])} at token {at:,} is not below "
                f"the vocabulary size {self.vocab_size} that meta.json declares"
            )
        return block

    def _fd(self, file: str) -> int:
        if self._files is None or self._pid != os.getpid():  # a worker process opens its own descriptors
            self._files, self._pid = OpenFiles(self.max_open), os.getpid()
        return self._files.fd(file)

    def __del__(self) -> None:
        if self._files is not None and self._pid == os.getpid():
            self._files.close()

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.from_numpy(self.tokens(index))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_files": None, "_pid": -1}  # descriptors do not travel to workers


class TokensDataModule(L.LightningDataModule):
    """Blocks streamed from prepared token shards, for a GPT (``lm``) or a BERT (``mlm``).

    Args:
        path: a folder written by ``python -m lightning_ltd.data.prepare``.
        block_size: tokens per training sequence (MLM rows: [CLS] + block_size - 2 + [SEP]).
        batch_size: sequences per batch (per rank).
        num_workers: DataLoader workers.
        seed: shuffling (and masking) seed.
        objective: ``lm``, ``mlm``, or ``auto`` (what the LightningModule's ``objective`` says).
        mask_prob: MLM: fraction of tokens that become prediction targets.
    """

    @checked
    def __init__(
        self,
        path: str,
        block_size: PositiveInt = 128,
        batch_size: PositiveInt = 16,
        num_workers: Count = 0,
        seed: Seed = 0,
        objective: Objective = "auto",
        mask_prob: OpenFraction = 0.15,
    ) -> None:
        super().__init__()
        self.path = path
        self.block_size = block_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.objective = objective
        self.mask_prob = mask_prob
        self.meta = read_meta(path)  # a bad folder fails at construction, before any work
        self.train_set: Dataset[Any] | None = None
        self.val_set: Dataset[Any] | None = None

    @property
    def produces(self) -> str:
        """The batches it serves: ``mlm`` or ``lm`` (``auto`` serves what the module takes)."""
        return "auto" if self.objective == "auto" else ("mlm" if self.objective == "mlm" else "lm")

    def use_objective(self, objective: str) -> None:
        """Serve ``lm`` or ``mlm`` batches (``train.py`` calls this with the module's objective)."""
        if self.objective == "auto":
            self.objective = objective

    @property
    def mlm(self) -> bool:
        """Whether batches are masked-LM rows (else next-token blocks); ``auto`` follows the module."""
        if self.objective == "auto" and self.trainer is not None:
            self.use_objective(getattr(self.trainer.lightning_module, "objective", "lm"))
        return self.objective == "mlm"

    @property
    def vocab_size(self) -> int:
        """Ids the model must embed: the prepared vocabulary (bytes + 4 specials for byte MLM)."""
        return MLM_VOCAB_SIZE if self.mlm and self.meta["tokenizer"] == "bytes" else int(self.meta["vocab_size"])

    @property
    def tokenizer_source(self) -> str:
        """What encoded the shards (checkpoints record it for evaluation)."""
        return shard_tokenizer(self.meta, self.path)

    def vocabulary(self) -> Vocabulary:
        """The special-token ids masking needs: bytes + 4 specials, or the prepared tokenizer's."""
        return masked_lm_vocabulary(shard_vocabulary(self.meta), f"path={self.path!r}")

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        width = self.width
        folder = Path(self.path).expanduser()
        vocab = int(self.meta["vocab_size"])
        train, val = (
            ShardBlocks(folder, self.meta[split], self.meta["dtype"], width, vocab_size=vocab)
            for split in ("train", "val")
        )
        for name, blocks in (("train", train), ("val", val)):
            if len(blocks) == 0:
                tokens = sum(s["tokens"] for s in self.meta[name])
                raise DataError(
                    f"path={self.path!r}: the {name} split has {tokens:,} tokens, fewer than one block of "
                    f"{width} (block_size={self.block_size}): use more text or a smaller block_size"
                )
        replicas = self.trainer.world_size if self.trainer is not None else 1
        if len(train) < self.batch_size * replicas:
            raise DataError(
                f"batch_size={self.batch_size}: the {len(train)} training blocks of path={self.path!r} "
                f"do not fill one batch on each of {replicas} rank(s)"
            )
        if self.mlm:
            vocab = self.vocabulary()
            frame = Framed(vocab.cls, vocab.sep, width)
            self.train_set = MaskedRows(train, vocab, self.seed, self.mask_prob, frame)
            self.val_set = MaskedRows(val, vocab, self.seed + 1, self.mask_prob, frame)
        else:
            self.train_set, self.val_set = train, val

    rarity: Any = None  # the rarity curriculum's (start_percent, steps, root_degree, accumulate); None: every block

    @property
    def width(self) -> int:
        """Tokens per training block (LM blocks carry the shifted target)."""
        return self.block_size + (0 if self.mlm else 1)

    def use_rarity(self, start_percent: int, steps: int, root_degree: int, accumulate: int = 1) -> None:
        """Serve the easiest blocks first (the rarity curriculum), from ``rarity-<width>.npy``."""
        self.rarity = (start_percent, steps, root_degree, accumulate)

    def rarity_problem(self) -> str | None:
        """Why the rarity curriculum cannot run on this folder (its scores missing or stale)."""
        from lightning_ltd.data.rarity import easiest_first

        blocks = sum(s["tokens"] // self.width for s in self.meta["train"])
        try:
            easiest_first(self.path, self.width, blocks)
        except DataError as err:
            return err.prefixed("data")
        return None

    def _sampler_class(self) -> Callable[..., Any] | None:
        if self.rarity is None:
            return None
        from lightning_ltd.data.rarity import EasiestFirstSampler, RarityPool, easiest_first

        order = easiest_first(self.path, self.width, len(self.train_set))
        start, steps, degree, accumulate = self.rarity
        replicas = self.trainer.world_size if self.trainer is not None else 1
        pool = RarityPool(len(order), self.batch_size * replicas * accumulate, start, steps, degree)
        return functools.partial(EasiestFirstSampler, order, pool)

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.train_set is not None, "call setup() first"
        return resumable_train_loader(
            self.train_set,
            self.batch_size,
            self.seed,
            self.trainer,
            with_epoch=self.mlm,
            sampler_class=self._sampler_class(),
            num_workers=self.num_workers,
            collate_fn=self.collate(),
        )

    def collate(self) -> Callable[[list[Any]], Any] | None:
        """Masked-LM rows into ``input_ids``, ``attention_mask``, ``labels`` (all one width here)."""
        return functools.partial(pad_batch, pad_id=self.vocabulary().pad) if self.mlm else None

    def val_dataloader(self) -> DataLoader[Any]:
        assert self.val_set is not None, "call setup() first"
        return sharded_eval_loader(
            self.val_set, self.batch_size, self.trainer, num_workers=self.num_workers, collate_fn=self.collate()
        )


__all__ = ["ShardBlocks", "TokensDataModule", "read_meta"]
