"""The encoders ``prepare`` writes shards with: bytes, a byte-level BPE trained on a sample of the
corpus (Hugging Face ``tokenizers``), or a Hugging Face tokenizer folder; and the smallest token
dtype that holds a vocabulary."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from lightning_ltd.data.vocabulary import decode_utf8, utf8_boundary
from lightning_ltd.errors import DataError, first_line
from lightning_ltd.pretrained.hf_models import quiet_transformers

PIECE_BYTES = 1 << 20

BPE_SAMPLE_BYTES = 1 << 30  # --bpe-sample-mb 1024


BPE_SPECIALS = ("<|endoftext|>", "[PAD]", "[CLS]", "[SEP]", "[MASK]")
"""BPE vocabularies get GPT's end-of-text and BERT's masked-LM specials, so one prepared corpus
serves both objectives."""


def token_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned type that holds every id."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size <= np.iinfo(dtype).max + 1:
            return np.dtype(dtype).newbyteorder("<")
    raise DataError(f"vocab_size={vocab_size} does not fit in 32 bits")


@dataclass
class Encoder:
    """Text pieces -> token ids, plus what ``meta.json`` records about the vocabulary."""

    kind: str  # "bytes", "bpe" or "hf"
    vocab_size: int
    separator: list[int]  # appended after every document
    specials: dict[str, int] = field(default_factory=dict)  # eos, pad, cls, sep, mask ids when present
    tokenizer: Any = None  # a tokenizers.Tokenizer for bpe / hf

    def encode(self, pieces: Sequence[bytes]) -> list[np.ndarray]:
        """Token ids of each piece. Pieces are encoded in runs of whole lines of about 8 KB, all
        in one batch: the Rust tokenizer spreads a batch over every core and is 2-3x faster on
        many short texts than on few long ones (3.6 vs 1.6 MB/s on 2 cores), and a cut after a
        newline rarely changes a merge. Ids go to numpy run by run (no per-token Python loop)."""
        if self.tokenizer is None:
            return [np.frombuffer(piece, dtype=np.uint8) for piece in pieces]
        runs = [line_runs(decode_utf8(piece)) for piece in pieces]
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)  # fast: no offsets
        encoded = iter(encode([run for piece_runs in runs for run in piece_runs], add_special_tokens=False))
        empty = np.zeros(0, dtype=np.int64)
        return [
            np.concatenate([empty, *(np.asarray(next(encoded).ids, dtype=np.int64) for _ in piece_runs)])
            for piece_runs in runs
        ]


def line_runs(text: str, size: int = 8192) -> list[str]:
    """``text`` cut after newlines into runs of at least ``size`` characters (the last may be shorter)."""
    runs, start = [], 0
    while start < len(text):
        end = text.find("\n", start + size)
        end = len(text) if end < 0 else end + 1
        runs.append(text[start:end])
        start = end
    return runs


def byte_encoder() -> Encoder:
    return Encoder("bytes", 256, separator=[10, 10])


def sample_text(files: Sequence[Path], budget_bytes: int) -> Iterator[str]:
    """About ``budget_bytes`` of text from evenly spaced places of the whole corpus, in pieces
    of ``PIECE_BYTES`` cut at newlines; only the sampled bytes are read. A corpus within the
    budget is read whole."""
    sizes = [f.stat().st_size for f in files]
    total = sum(sizes)
    if total <= budget_bytes:
        for piece, _ in read_pieces(files):
            yield piece.decode("utf-8", errors="replace")
        return
    count = max(1, budget_bytes // PIECE_BYTES)
    starts = [int(j * total / count) for j in range(count)]  # global byte offsets
    file_starts = np.cumsum([0, *sizes]).tolist()
    for start in starts:
        index = bisect.bisect_right(file_starts, start) - 1
        with open(files[index], "rb") as handle:
            handle.seek(start - file_starts[index])
            raw = handle.read(PIECE_BYTES)
        if b"\x00" in raw:
            continue  # binary, not text (read_pieces skips such files too)
        first, last = raw.find(b"\n") + 1, raw.rfind(b"\n") + 1  # whole lines only
        if 0 < first < last:
            yield raw[first:last].decode("utf-8", errors="replace")


def train_bpe(files: Sequence[Path], vocab_size: int, output: Path, sample_bytes: int = BPE_SAMPLE_BYTES) -> Encoder:
    """A byte-level BPE (GPT-2's kind) trained on ``sample_bytes`` of ``files`` spread over the
    whole corpus (``sample_text``): Hugging Face ``tokenizers`` counts every distinct word of
    what it trains on in memory, hundreds of GB at 100 GB of text, while merges learned from a
    GB are nearly those of the whole; saved in ``output/tokenizer``."""
    try:
        from tokenizers import ByteLevelBPETokenizer
    except ImportError as err:
        raise DataError("tokenizer='bpe': needs Hugging Face tokenizers: pip install 'lightning-ltd[data]'") from err
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        sample_text(files, sample_bytes), vocab_size=vocab_size, min_frequency=2, special_tokens=list(BPE_SPECIALS)
    )
    folder = output / "tokenizer"
    folder.mkdir(parents=True, exist_ok=True)
    try:
        from transformers import PreTrainedTokenizerFast

        names = dict(zip(("eos_token", "pad_token", "cls_token", "sep_token", "mask_token"), BPE_SPECIALS, strict=True))
        PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token=BPE_SPECIALS[0], **names).save_pretrained(
            folder
        )
    except ImportError:  # transformers is optional: tokenizer.json alone loads with tokenizers
        bpe.save(str(folder / "tokenizer.json"))
    specials = dict(zip(("eos", "pad", "cls", "sep", "mask"), (bpe.token_to_id(t) for t in BPE_SPECIALS), strict=True))
    return Encoder(
        "bpe", bpe.get_vocab_size(), separator=[specials["eos"]], specials=specials, tokenizer=bpe._tokenizer
    )


def hf_encoder(path: str) -> Encoder:
    """A local Hugging Face tokenizer folder, used as is (its own special tokens)."""
    try:
        from transformers import AutoTokenizer
    except ImportError as err:
        raise DataError(f"tokenizer={path!r}: needs transformers: pip install 'lightning-ltd[hf]'") from err
    if not Path(path).is_dir():
        raise DataError(f"tokenizer={path!r}: no such directory (expected bytes, bpe or a tokenizer folder)")
    try:
        with quiet_transformers():  # its warnings about a folder it cannot load are not the error
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    except Exception as err:  # transformers raises many kinds; the user needs the path and the first line
        raise DataError(f"tokenizer={path!r}: does not load as a tokenizer: {first_line(err)}") from err
    if not getattr(tokenizer, "is_fast", False):
        raise DataError(f"tokenizer={path!r}: needs a fast (Rust) tokenizer, got {type(tokenizer).__name__}")
    names = {"eos": "eos_token_id", "pad": "pad_token_id", "cls": "cls_token_id", "sep": "sep_token_id"}
    specials = {k: getattr(tokenizer, v) for k, v in {**names, "mask": "mask_token_id"}.items()}
    specials = {k: int(v) for k, v in specials.items() if v is not None}
    separator = [specials["eos"]] if "eos" in specials else [specials["sep"]] if "sep" in specials else []
    return Encoder("hf", len(tokenizer), separator=separator, specials=specials, tokenizer=tokenizer.backend_tokenizer)


def read_pieces(files: Sequence[Path]) -> Iterator[tuple[bytes, bool]]:
    """(piece, last piece of its document) in pieces of about 1 MB, cut after a newline where one
    is near, so a word is rarely split; files with NUL bytes are not text and are skipped."""
    for path in files:
        with open(path, "rb") as handle:
            head = handle.read(PIECE_BYTES)
            if b"\x00" in head:
                continue
            while head:
                tail = handle.read(PIECE_BYTES)
                cut = (head.rfind(b"\n", len(head) // 2) + 1 or utf8_boundary(head)) if tail else len(head)
                yield head[:cut], not tail and cut == len(head)
                head = head[cut:] + tail
