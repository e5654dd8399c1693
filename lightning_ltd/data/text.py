"""Text data: a default corpus that ships with Python or users' own files, packed into next-token blocks.

Tokens are packed into non-overlapping blocks of ``block_size + 1`` (inputs plus the shifted
targets); every ``val_every``-th block goes to validation, so the split is deterministic, spread
over the whole corpus, and never shares a token between train and val.
"""

from __future__ import annotations

import glob
import os
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_ltd.checks.schema import Count, HoldOut, PositiveInt, Seed, checked
from lightning_ltd.data.loading import ResumableDataLoader, resumable_train_loader, sharded_eval_loader
from lightning_ltd.data.vocabulary import ByteVocabulary, HFVocabulary, NotUTF8Error, Vocabulary
from lightning_ltd.errors import DataError


def default_corpus(max_bytes: int | None = None) -> bytes:
    """Real English and code that every CPython installation carries.

    The language reference topics of ``pydoc_data`` (documentation prose) followed by the
    standard library's top-level source files, in sorted order, so every machine with the
    same Python version builds the same corpus.
    """
    from pydoc_data.topics import topics

    parts = [topics[name].encode("utf-8") for name in sorted(topics)]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    parts += [path.read_bytes() for path in sorted(stdlib.glob("*.py"))]
    corpus = b"\n\n".join(parts)
    return corpus if max_bytes is None else corpus[:max_bytes]


def resolve_text_files(path: str | os.PathLike[str]) -> list[Path]:
    """A file, every file under a directory (recursively), or a glob pattern; sorted."""
    text = str(path)
    if any(ch in text for ch in "*?["):
        files = [Path(p) for p in glob.glob(text, recursive=True)]
        if not files:
            raise DataError(f"path={text!r}: the pattern matches no file")
    else:
        root = Path(text).expanduser()
        if not root.exists():
            raise DataError(f"path={text!r}: no such file or directory")
        if (root / "meta.json").is_file():  # its shards are token ids: read as text they train on noise
            raise DataError(f"path={text!r}: a prepared token folder (meta.json): read it with data=tokens")
        files = [root] if root.is_file() else [p for p in root.rglob("*")]
    files = sorted(p for p in files if p.is_file() and not p.name.startswith("."))
    if not files:
        raise DataError(f"path={text!r}: no files to read")
    return files


def read_corpus(files: Sequence[Path]) -> bytes:
    """Concatenate the files, separated by a blank line; files with NUL bytes are not text."""
    return b"\n\n".join(data for data in (p.read_bytes() for p in files) if b"\x00" not in data)


def load_corpus(path: str | None, max_bytes: int | None = None) -> bytes:
    """The user's text at ``path`` (file, directory or glob), or the default corpus if None."""
    if path is None:
        return default_corpus(max_bytes)
    data = read_corpus(resolve_text_files(path))
    if not data:
        raise DataError(f"path={path!r}: the files are empty (or not text)")
    capped = data if max_bytes is None else data[:max_bytes]
    if capped.isspace():  # it would train on blank blocks, and its loss fall to zero
        where = f" (its first {max_bytes} bytes: data.max_bytes)" if len(capped) < len(data) else ""
        raise DataError(f"path={path!r}: the text is only whitespace{where}")
    return capped


def pack_blocks(tokens: torch.Tensor, block_size: int) -> torch.Tensor:
    """``[N]`` -> ``[n_blocks, block_size + 1]``, non-overlapping, the tail that does not fit dropped."""
    width = block_size + 1
    n_blocks = tokens.numel() // width
    return tokens[: n_blocks * width].view(n_blocks, width)


def split_indices(n_blocks: int, val_every: int) -> tuple[list[int], list[int]]:
    """Deterministic split: block ``i`` is validation when ``i % val_every == 0``."""
    val = list(range(0, n_blocks, val_every))
    train = [i for i in range(n_blocks) if i % val_every]
    return train, val


class BlockDataset(Dataset[torch.Tensor]):
    def __init__(self, blocks: torch.Tensor) -> None:
        self.blocks = blocks

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.blocks[index].long()


class TextDataModule(L.LightningDataModule):
    """Packed next-token blocks; each batch is a long tensor ``[B, block_size + 1]``.

    Args:
        path: a file, a directory or a glob of the user's text; None uses the default corpus.
        block_size: tokens per training sequence.
        batch_size: sequences per batch.
        val_every: every ``val_every``-th block is held out for validation.
        max_bytes: cap on the corpus size (None: all of it).
        num_workers: DataLoader workers.
        seed: shuffling seed of the training loader.
        tokenizer: a local Hugging Face tokenizer directory; None: UTF-8 bytes.
    """

    produces = "lm"  # the batches it serves, against the module's ``objective`` (checked at start)

    @checked
    def __init__(
        self,
        path: str | None = None,
        block_size: PositiveInt = 128,
        batch_size: PositiveInt = 16,
        val_every: HoldOut = 20,
        max_bytes: PositiveInt | None = None,
        num_workers: Count = 0,
        seed: Seed = 0,
        tokenizer: str | None = None,
    ) -> None:
        super().__init__()
        if path is not None:
            resolve_text_files(path)  # a missing path fails at construction, with the other settings
        self.path = path
        self.block_size = block_size
        self.batch_size = batch_size
        self.val_every = val_every
        self.max_bytes = max_bytes
        self.num_workers = num_workers
        self.seed = seed
        self.tokenizer: Vocabulary = ByteVocabulary() if tokenizer is None else HFVocabulary(tokenizer)
        self.train_set: BlockDataset | None = None
        self.val_set: BlockDataset | None = None

    @property
    def vocab_size(self) -> int:
        """Ids the model must embed: 256 bytes, or the tokenizer's vocabulary."""
        return self.tokenizer.size

    @property
    def tokenizer_source(self) -> str | None:
        """What encodes the text (checkpoints record it for evaluation)."""
        return self.tokenizer.source

    @property
    def source(self) -> str:
        """What the text comes from, for messages."""
        return "the default corpus (Python's docs and standard library)" if self.path is None else repr(self.path)

    def load_bytes(self) -> bytes:
        """The corpus as bytes (capped at ``max_bytes``)."""
        return load_corpus(self.path, self.max_bytes)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        dtype = torch.uint8 if self.tokenizer.size <= 256 else torch.int32
        try:
            tokens = torch.tensor(self.tokenizer.encode(self.load_bytes()), dtype=dtype)
        except NotUTF8Error as err:
            raise DataError(f"path={self.path!r}: {err}") from err
        blocks = pack_blocks(tokens, self.block_size)
        if blocks.shape[0] < 2:
            raise DataError(
                f"path={self.path!r}: {tokens.numel()} tokens make {blocks.shape[0]} block(s) of "
                f"{self.block_size + 1}; need at least 2 (one train, one val): use more text or a smaller block_size"
            )
        train, val = split_indices(blocks.shape[0], self.val_every)
        if len(train) < self.batch_size:
            raise DataError(
                f"batch_size={self.batch_size} is more than the {len(train)} training blocks of {self.source}"
            )
        self.train_set = BlockDataset(blocks[train])
        self.val_set = BlockDataset(blocks[val])

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.train_set is not None, "call setup() first"
        return resumable_train_loader(
            self.train_set, self.batch_size, self.seed, self.trainer, num_workers=self.num_workers
        )

    def val_dataloader(self) -> DataLoader[torch.Tensor]:
        assert self.val_set is not None, "call setup() first"
        return sharded_eval_loader(self.val_set, self.batch_size, self.trainer, num_workers=self.num_workers)
