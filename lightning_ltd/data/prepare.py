"""Tokenize a text corpus once into shards that training streams: ``python -m lightning_ltd.data.prepare``.

    python -m lightning_ltd.data.prepare --input PATH --output DIR \\
        [--tokenizer bytes|bpe|HF_TOKENIZER_DIR] [--vocab-size N] [--val-fraction F] [--bpe-sample-mb MB]

``PATH`` is a text file, a folder (read recursively) or a glob; each file is a document, and
documents are separated by the tokenizer's end-of-text token (two newlines for bytes). The
output is a folder of flat token files (``train-00000.bin``, ``val-00000.bin``: little-endian
uint8/uint16/uint32, the smallest that holds the vocabulary), a ``meta.json`` that describes
them, and, for ``bpe``, the trained tokenizer (``tokenizer/``, loadable by ``transformers``).

Memory stays flat whatever the corpus size: files are read in 1 MB pieces, encoded in batches of
about 8 MB (the Rust tokenizer spreads each over every core) and appended to the shards; ``bpe``
trains on ``--bpe-sample-mb`` (default 1024) MB read from evenly spaced places of the corpus. The split
is deterministic and spread over the whole corpus: of every run of ``1 / val_fraction`` units of
2,048 tokens, one goes to validation (the first unit always does, so even a small corpus has a
validation split).

Why not ``litdata.optimize``: ``pip install litdata`` requires torchvision, which here replaced
the CPU torch wheel with a CUDA build (torch 2.14.1+cu130) and cannot import beside the CPU one.
Flat token files read with ``os.pread`` need nothing beyond numpy, keep resident memory flat,
and are what nanoGPT and Megatron's indexed datasets store.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from lightning_ltd.checks.lock import LOCK_NAME, writer_of
from lightning_ltd.console import CommandParser, boundary
from lightning_ltd.data.encoders import (
    BPE_SAMPLE_BYTES,
    Encoder,
    byte_encoder,
    hf_encoder,
    read_pieces,
    token_dtype,
    train_bpe,
)
from lightning_ltd.data.shards import FORMAT, META, VERSION, folder_hash, tokenizer_folder
from lightning_ltd.data.text import resolve_text_files
from lightning_ltd.data.vocabulary import NotUTF8Error
from lightning_ltd.errors import DataError, writing

BATCH_BYTES = 8 << 20  # text per encode call: enough runs to keep every core busy, bounded memory
SPLIT_UNIT = 2048


class ShardWriter:
    """Appends tokens to ``{prefix}-00000.bin``, ``-00001.bin``, ... of at most ``shard_tokens``."""

    def __init__(self, folder: Path, prefix: str, dtype: np.dtype, shard_tokens: int) -> None:
        self.folder, self.prefix, self.dtype, self.shard_tokens = folder, prefix, dtype, shard_tokens
        self.shards: list[dict[str, Any]] = []
        self._handle: Any = None
        self._hash: Any = None  # the shard's content hash: what derived files (rarity scores) record

    def write(self, tokens: np.ndarray) -> None:
        while len(tokens):
            if self._handle is None or self.shards[-1]["tokens"] >= self.shard_tokens:
                self._open_next()
            room = self.shard_tokens - self.shards[-1]["tokens"]
            part, tokens = tokens[:room], tokens[room:]
            data = part.astype(self.dtype, copy=False).tobytes()
            self._handle.write(data)
            self._hash.update(data)
            self.shards[-1]["tokens"] += len(part)

    def _open_next(self) -> None:
        self.close()
        name = f"{self.prefix}-{len(self.shards):05d}.bin"
        self.shards.append({"file": name, "tokens": 0})
        self._handle = open(self.folder / name, "wb")  # noqa: SIM115 (closed in close())
        self._hash = hashlib.sha256()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self.shards[-1]["sha256"] = self._hash.hexdigest()


def is_val_unit(unit: int, fraction: float) -> bool:
    """Whether split unit ``unit`` goes to validation: the first one, then whenever ``unit * f``
    crosses an integer, so val gets ``fraction`` of the units, evenly spread."""
    return unit == 0 or int(unit * fraction) > int((unit - 1) * fraction)


class SplitWriter:
    """Routes units of ``SPLIT_UNIT`` tokens to train or val (``is_val_unit``)."""

    def __init__(self, train: ShardWriter, val: ShardWriter, fraction: float) -> None:
        self.train, self.val, self.fraction = train, val, fraction
        self.position = 0  # tokens written so far

    def write(self, tokens: np.ndarray) -> None:
        while len(tokens):
            unit, offset = divmod(self.position, SPLIT_UNIT)
            part, tokens = tokens[: SPLIT_UNIT - offset], tokens[SPLIT_UNIT - offset :]
            to_val = is_val_unit(unit, self.fraction)
            (self.val if to_val else self.train).write(part)
            self.position += len(part)


def prepare(
    inputs: Sequence[str],
    output: str,
    tokenizer: str = "bytes",
    vocab_size: int = 50257,
    val_fraction: float = 0.01,
    shard_tokens: int = 1 << 28,
    overwrite: bool = False,
    progress: bool = True,
    bpe_sample_mb: float = BPE_SAMPLE_BYTES / 2**20,
) -> dict[str, Any]:
    """Tokenize ``inputs`` into shards under ``output``; returns the ``meta.json`` contents.
    ``bpe_sample_mb``: MB of the corpus (spread over all of it) the ``bpe`` tokenizer learns from."""
    problems = []
    if not 0.0 < val_fraction < 1.0:
        problems.append(f"val_fraction={val_fraction!r} must be in (0, 1)")
    if tokenizer == "bpe" and not 260 <= vocab_size <= 1 << 20:
        problems.append(f"vocab_size={vocab_size!r} must be in [260, 1048576] for a BPE")
    if shard_tokens < SPLIT_UNIT:
        problems.append(f"shard_tokens={shard_tokens} must be >= {SPLIT_UNIT}")
    if not bpe_sample_mb > 0:
        problems.append(f"bpe_sample_mb={bpe_sample_mb!r} must be > 0")
    if problems:
        raise DataError(problems)
    files = sorted({f for path in inputs for f in resolve_text_files(path)})
    total_bytes = sum(f.stat().st_size for f in files)
    if total_bytes == 0:
        raise DataError(f"input={list(inputs)!r}: the files are empty")
    folder = Path(output).expanduser()
    with writer_of(folder, "output"), writing(folder):
        if any(p.name != LOCK_NAME for p in folder.iterdir()) and not overwrite:
            raise DataError(f"output={output!r}: exists and is not empty (choose a new folder, or --overwrite)")
        return _write_corpus(
            inputs,
            files,
            total_bytes,
            folder,
            tokenizer,
            vocab_size,
            val_fraction,
            shard_tokens,
            progress,
            bpe_sample_mb,
        )


def _write_corpus(
    inputs: Sequence[str],
    files: list[Path],
    total_bytes: int,
    folder: Path,
    tokenizer: str,
    vocab_size: int,
    val_fraction: float,
    shard_tokens: int,
    progress: bool,
    bpe_sample_mb: float,
) -> dict[str, Any]:
    """The shards, the tokenizer and ``meta.json`` (last: it appears once every shard is whole)."""
    if tokenizer == "bytes":
        encoder = byte_encoder()
    elif tokenizer == "bpe":
        encoder = train_bpe(files, vocab_size, folder, int(bpe_sample_mb * 2**20))
    else:
        encoder = hf_encoder(tokenizer)
    dtype = token_dtype(encoder.vocab_size)
    train, val = (ShardWriter(folder, name, dtype, shard_tokens) for name in ("train", "val"))
    splitter = SplitWriter(train, val, val_fraction)
    separator = np.asarray(encoder.separator, dtype=np.int64)
    with tqdm(
        total=total_bytes, unit="B", unit_scale=True, desc="tokenizing", file=sys.stderr, disable=not progress
    ) as bar:
        batch: list[tuple[bytes, bool]] = []
        blank = True  # only whitespace so far
        try:
            for piece in read_pieces(files):
                blank = blank and (not piece[0] or piece[0].isspace())
                batch.append(piece)
                if sum(len(p) for p, _ in batch) >= BATCH_BYTES:  # small documents: many per call
                    _write_batch(encoder, batch, separator, splitter, bar)
                    batch = []
            _write_batch(encoder, batch, separator, splitter, bar)
        except NotUTF8Error as err:  # a tokenizer that reads text; bytes take any bytes
            raise DataError(f"input={list(inputs)!r}: {err}") from err
    train.close()
    val.close()
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "tokenizer": encoder.kind if encoder.kind != "hf" else str(Path(tokenizer).resolve()),
        "vocab_size": encoder.vocab_size,
        "dtype": dtype.name,
        "specials": encoder.specials,
        "train": train.shards,
        "val": val.shards,
        "val_fraction": val_fraction,
        "sources": len(files),
        "bytes": total_bytes,
    }
    if (tokenizer_files := tokenizer_folder(folder, meta)) is not None:  # the shards' ids mean its tokens
        meta["tokenizer_sha256"] = folder_hash(tokenizer_files)
    if not splitter.position:
        raise DataError(f"input={list(inputs)!r}: no text to tokenize (the files hold NUL bytes: binary, not text)")
    if blank:
        raise DataError(f"input={list(inputs)!r}: the text is only whitespace")
    temporary = folder / (META + ".tmp")
    temporary.write_text(json.dumps(meta, indent=1))
    temporary.replace(folder / META)  # meta.json appears only once every shard is complete
    return meta


def _write_batch(
    encoder: Encoder, batch: list[tuple[bytes, bool]], separator: np.ndarray, splitter: Any, bar: Any
) -> None:
    for (piece, ends_document), ids in zip(batch, encoder.encode([p for p, _ in batch]), strict=True):
        splitter.write(ids)
        if ends_document and len(separator):
            splitter.write(separator)
        bar.update(len(piece))


@boundary
def main(argv: Sequence[str] | None = None) -> int:
    parser = CommandParser("lightning_ltd.data.prepare", __doc__)
    parser.add_argument("--input", required=True, action="append", help="text file, folder or glob (repeatable)")
    parser.add_argument("--output", required=True, help="new folder for the shards")
    parser.add_argument("--tokenizer", default="bytes", help="bytes, bpe, or a local Hugging Face tokenizer folder")
    parser.add_argument("--vocab-size", type=int, default=50257, help="BPE vocabulary size (GPT-2's: 50257)")
    parser.add_argument("--val-fraction", type=float, default=0.01)
    parser.add_argument("--shard-tokens", type=int, default=1 << 28, help="tokens per shard file")
    parser.add_argument(
        "--bpe-sample-mb",
        type=float,
        default=BPE_SAMPLE_BYTES / 2**20,
        help="MB of text, spread over the whole corpus, the bpe tokenizer trains on (default 1024)",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    meta = prepare(
        args.input,
        args.output,
        tokenizer=args.tokenizer,
        vocab_size=args.vocab_size,
        val_fraction=args.val_fraction,
        shard_tokens=args.shard_tokens,
        overwrite=args.overwrite,
        progress=not args.quiet,
        bpe_sample_mb=args.bpe_sample_mb,
    )
    counts = {split: sum(s["tokens"] for s in meta[split]) for split in ("train", "val")}
    print(
        f"{args.output}: {counts['train']:,} train and {counts['val']:,} val tokens from {meta['bytes']:,} bytes "
        f"({meta['tokenizer']}, vocabulary {meta['vocab_size']:,})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
