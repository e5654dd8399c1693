"""Masked-LM data: variable-length text segments with real padding, BERT's 80/10/10 masking.

Byte tokens plus four specials (``[PAD] [CLS] [SEP] [MASK]`` = 256..259), or a local Hugging
Face tokenizer's vocabulary (``tokenizer=DIR``). Each segment is a
paragraph of the corpus (split at blank lines, long ones cut into pieces), so rows in a batch
have different lengths and are padded to the longest: the key-padding mask is exercised.
Training masks dynamically: a new draw every epoch, a pure function of (seed, epoch, sample
index), so data workers never repeat each other and a resumed run masks as before; validation
masks once, so its loss is comparable across evaluations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Annotated, Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lightning_ltd.checks.schema import Count, HoldOut, OpenFraction, PositiveInt, Range, Seed, checked
from lightning_ltd.data.loading import ResumableDataLoader, resumable_train_loader, sharded_eval_loader
from lightning_ltd.data.text import load_corpus, resolve_text_files
from lightning_ltd.data.vocabulary import (
    PAD,
    ByteVocabulary,
    HFVocabulary,
    NotUTF8Error,
    Vocabulary,
    decode_utf8,
    masked_lm_vocabulary,
)
from lightning_ltd.errors import DataError
from lightning_ltd.ltd.keyed_hash import keyed_seed

IGNORE_INDEX = -100
BYTES = ByteVocabulary(masked_lm=True)


def split_segments(corpus: bytes, max_len: int, min_len: int) -> list[bytes]:
    """Paragraphs (blank-line separated), cut into pieces of at most ``max_len`` bytes."""
    segments = []
    for paragraph in corpus.split(b"\n\n"):
        paragraph = paragraph.strip()
        segments += [paragraph[i : i + max_len] for i in range(0, len(paragraph), max_len)]
    return [s for s in segments if len(s) >= min_len]


def encode_segment(segment: bytes) -> torch.Tensor:
    """``[CLS] bytes [SEP]`` in the byte vocabulary."""
    return BYTES.masked_row(segment, len(segment) + 2)


def mask_tokens(
    ids: torch.Tensor, generator: torch.Generator, mask_prob: float = 0.15, vocab: Vocabulary = BYTES
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of one row: ``mask_prob`` of the non-special tokens become targets; of those
    80 % are replaced by [MASK], 10 % by a random token, 10 % kept. Labels are -100 elsewhere.
    At least one token is a target when the row has any regular token."""
    maskable = ~torch.isin(ids, vocab.special_ids_tensor)
    selected = (torch.rand(ids.shape, generator=generator) < mask_prob) & maskable
    candidates = maskable.nonzero().flatten()
    if not selected.any() and len(candidates):
        selected[candidates[torch.randint(len(candidates), (1,), generator=generator)]] = True
    labels = torch.where(selected, ids, IGNORE_INDEX)
    roll = torch.rand(ids.shape, generator=generator)
    random_tokens = torch.randint(0, vocab.random_range, ids.shape, generator=generator)
    inputs = torch.where(selected & (roll < 0.8), vocab.mask, ids)
    inputs = torch.where(selected & (roll >= 0.8) & (roll < 0.9), random_tokens, inputs)
    return inputs, labels


def padded_width(longest: int, multiple: int = 1, max_width: int | None = None) -> int:
    """``longest`` rounded up to a multiple of ``multiple`` (capped at ``max_width``): few distinct
    widths mean few compiled graphs, and multiples of 8 suit tensor cores."""
    width = -(-longest // multiple) * multiple
    return width if max_width is None else max(longest, min(width, max_width))


def bucket_widths(max_width: int, multiple: int) -> list[int]:
    """Every width ``padded_width`` can produce for rows of 1..``max_width`` tokens."""
    return sorted({padded_width(n, multiple, max_width) for n in range(1, max_width + 1)})


def pad_batch(
    rows: list[tuple[torch.Tensor, torch.Tensor]], pad_id: int = PAD, multiple: int = 1, max_width: int | None = None
) -> dict[str, torch.Tensor]:
    """Pad (inputs, labels) rows to the longest, rounded up to a multiple of ``multiple``:
    ``input_ids``, ``attention_mask``, ``labels``."""
    width = padded_width(max(len(inputs) for inputs, _ in rows), multiple, max_width)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (inputs, row_labels) in enumerate(rows):
        input_ids[i, : len(inputs)] = inputs
        labels[i, : len(inputs)] = row_labels
        attention_mask[i, : len(inputs)] = True
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def mask_sample(
    ids: torch.Tensor, seed: int, epoch: int, index: int, mask_prob: float, vocab: Vocabulary = BYTES
) -> tuple[torch.Tensor, torch.Tensor]:
    """``mask_tokens`` with a generator seeded from (seed, epoch, sample index): each sample gets a
    new masking every epoch, the same in whichever worker draws it, and the same after a resume."""
    generator = torch.Generator().manual_seed(keyed_seed(seed, epoch, index))
    return mask_tokens(ids, generator, mask_prob, vocab)


class Framed:
    """``[CLS] tokens[: width - 2] [SEP]``: a raw block of token ids as a masked-LM row (picklable,
    for data workers)."""

    def __init__(self, cls: int, sep: int, width: int) -> None:
        self.cls, self.sep, self.width = torch.tensor([cls]), torch.tensor([sep]), width

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.cls, tokens[: self.width - 2], self.sep])


class MaskedRows(Dataset[Any]):
    """The one masked-LM dataset: rows (``[CLS] ... [SEP]``, or raw blocks that ``frame`` makes
    rows of) masked on access from (seed, epoch, index) (``mask_sample``), as (inputs, labels).

    Indexed by ``(epoch, index)`` pairs (``ResumableSampler(with_epoch=True)``): a new masking
    every epoch, the same after a resume. A plain index (validation) is epoch 0, so validation
    masks never change.
    """

    def __init__(
        self,
        rows: Sequence[torch.Tensor],
        vocab: Any,
        seed: int,
        mask_prob: float,
        frame: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.rows, self.vocab, self.seed, self.mask_prob, self.frame = rows, vocab, seed, mask_prob, frame

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        ids = self.rows[index] if self.frame is None else self.frame(self.rows[index])
        return mask_sample(ids, self.seed, epoch, index, self.mask_prob, self.vocab)


class MLMDataModule(L.LightningDataModule):
    """Masked-LM batches (dicts of ``input_ids``, ``attention_mask``, ``labels``) from text.

    Args:
        path: the user's text (file, directory or glob); None uses the default corpus.
        block_size: longest row in tokens, [CLS] and [SEP] included.
        min_len: shortest segment kept, in bytes.
        batch_size: rows per batch.
        mask_prob: fraction of tokens that become prediction targets.
        val_every: every ``val_every``-th segment is held out for validation.
        max_bytes: cap on the corpus size.
        seed: shuffling and masking seed.
        tokenizer: a local Hugging Face tokenizer directory (with [MASK] etc.); None: bytes.
        pad_to_multiple_of: batches are padded to the longest row rounded up to a multiple of
            this (capped at ``block_size``), so a run sees few distinct widths (``widths``):
            each is one compiled graph with ``model.compile=true``.
    """

    produces = "mlm"  # the batches it serves, against the module's ``objective`` (checked at start)

    @checked
    def __init__(
        self,
        path: str | None = None,
        block_size: Annotated[int, Range(ge=3)] = 128,  # [CLS], a token, [SEP]
        min_len: PositiveInt = 16,
        batch_size: PositiveInt = 32,
        mask_prob: OpenFraction = 0.15,
        val_every: HoldOut = 20,
        max_bytes: PositiveInt | None = None,
        num_workers: Count = 0,
        seed: Seed = 0,
        tokenizer: str | None = None,
        pad_to_multiple_of: PositiveInt = 8,
    ) -> None:
        super().__init__()
        if min_len > block_size - 2:  # split_segments cuts at block_size - 2: no segment could be kept
            raise DataError(f"min_len={min_len} is longer than any segment (block_size={block_size} less [CLS], [SEP])")
        if path is not None:
            resolve_text_files(path)  # a missing path fails at construction, with the other settings
        self.path = path
        self.block_size = block_size
        self.min_len = min_len
        self.batch_size = batch_size
        self.mask_prob = mask_prob
        self.val_every = val_every
        self.max_bytes = max_bytes
        self.num_workers = num_workers
        self.seed = seed
        self.pad_to_multiple_of = pad_to_multiple_of
        self.vocab = (
            BYTES if tokenizer is None else masked_lm_vocabulary(HFVocabulary(tokenizer), f"tokenizer={tokenizer!r}")
        )
        self.train_set: MaskedRows | None = None
        self.val_set: MaskedRows | None = None

    @property
    def vocab_size(self) -> int:
        """Ids the model must embed (the tokenizer's, with its special tokens)."""
        return self.vocab.size

    @property
    def tokenizer_source(self) -> str | None:
        """What encodes the text (checkpoints record it for evaluation)."""
        return self.vocab.source

    @property
    def widths(self) -> list[int]:
        """Every batch width this module can produce (the compiled-graph bound counts them)."""
        return bucket_widths(self.block_size, self.pad_to_multiple_of)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        corpus = load_corpus(self.path, self.max_bytes)
        if isinstance(self.vocab, HFVocabulary):  # it reads text: checked once, for the whole corpus
            try:
                decode_utf8(corpus)
            except NotUTF8Error as err:
                raise DataError(f"path={self.path!r}: {err}") from err
        segments = split_segments(corpus, self.block_size - 2, self.min_len)
        encoded = [self.vocab.masked_row(s, self.block_size) for s in segments]
        encoded = [ids for ids in encoded if not torch.isin(ids, self.vocab.special_ids_tensor).all()]
        train = [ids for i, ids in enumerate(encoded) if i % self.val_every]
        val = [ids for i, ids in enumerate(encoded) if i % self.val_every == 0]
        if len(train) < self.batch_size or not val:
            raise DataError(
                f"path={self.path!r}: {len(segments)} segments of >= {self.min_len} bytes, too few for "
                f"batch_size={self.batch_size} plus validation"
            )
        # masks are a function of (seed, epoch, index), the same on any rank and at any world size
        self.train_set = MaskedRows(train, self.vocab, self.seed, self.mask_prob)
        self.val_set = MaskedRows(val, self.vocab, self.seed + 1, self.mask_prob)

    def train_dataloader(self) -> ResumableDataLoader:
        assert self.train_set is not None, "call setup() first"
        return resumable_train_loader(
            self.train_set,
            self.batch_size,
            self.seed,
            self.trainer,
            collate_fn=self.padding(),
            num_workers=self.num_workers,
            with_epoch=True,
        )

    def padding(self) -> Any:
        """Pad to the longest row, rounded up to ``pad_to_multiple_of`` (at most ``block_size``)."""
        return functools.partial(
            pad_batch, pad_id=self.vocab.pad, multiple=self.pad_to_multiple_of, max_width=self.block_size
        )

    def val_dataloader(self) -> DataLoader[dict[str, torch.Tensor]]:
        assert self.val_set is not None, "call setup() first"
        return sharded_eval_loader(self.val_set, self.batch_size, self.trainer, collate_fn=self.padding())
