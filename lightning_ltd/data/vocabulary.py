"""The one tokenizer abstraction: a ``Vocabulary`` turns text into ids and back and knows the
masked-LM specials. Bytes, a local Hugging Face tokenizer folder, or a prepared shard folder's."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from lightning_ltd.errors import DataError, first_line
from lightning_ltd.pretrained.hf_models import quiet_transformers

SPECIALS = ("pad", "cls", "sep", "mask")
PAD, CLS, SEP, MASK = 256, 257, 258, 259  # the byte vocabulary's specials, after the 256 bytes
MLM_VOCAB_SIZE = 260
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "vocab.json")
"""Files of which a Hugging Face tokenizer folder holds at least one."""


MAX_NON_UTF8_SHARE = 0.001
"""A text may hold up to this share of bytes that are not UTF-8 (stray bytes of a large crawl,
each read as U+FFFD); more means another encoding (Latin-1, UTF-16), whose every accented
letter would become U+FFFD under a tokenizer that reads text."""
_ESCAPED = re.compile("[\udc80-\udcff]")


class NotUTF8Error(DataError):
    """Text a tokenizer would read is in another encoding than UTF-8."""


def decode_utf8(data: bytes) -> str:
    """``data`` as text; up to ``MAX_NON_UTF8_SHARE`` of its bytes may be invalid (each becomes
    U+FFFD), more raise ``NotUTF8Error`` with where the first one is. A character cut at the end
    (a read capped at ``max_bytes``) is left out, not counted."""
    data = data[: utf8_boundary(data)]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        first = err.start
    escaped = data.decode("utf-8", errors="surrogateescape")  # each invalid byte: one lone surrogate
    invalid = len(_ESCAPED.findall(escaped))
    if invalid > MAX_NON_UTF8_SHARE * len(data):
        raise NotUTF8Error(
            f"not UTF-8 text: {invalid:,} of its {len(data):,} bytes are not UTF-8 (the first at byte {first:,}); "
            "convert it first (iconv -f latin1 -t utf-8)"
        )
    return _ESCAPED.sub("\ufffd", escaped)


def utf8_boundary(data: bytes) -> int:
    """The length of the longest prefix of ``data`` that ends on a whole UTF-8 character."""
    lead = len(data) - 1
    while lead > max(0, len(data) - 4) and data[lead] & 0xC0 == 0x80:  # continuation bytes
        lead -= 1
    if lead < 0 or data[lead] < 0xC0:  # ASCII (or not UTF-8 at all): any cut will do
        return len(data)
    expected = 2 if data[lead] < 0xE0 else 3 if data[lead] < 0xF0 else 4
    return len(data) if lead + expected <= len(data) else lead or len(data)


def has_tokenizer(folder: str | os.PathLike[str]) -> bool:
    return any((Path(folder) / name).is_file() for name in TOKENIZER_FILES)


class Vocabulary:
    """``size`` ids; the masked-LM specials (``pad``, ``cls``, ``sep``, ``mask``; None where it
    has none) and ``random_range``, the ids a random replacement draws from. Subclasses encode.
    ``source`` is what reloads the encoder (``"bytes"``, a tokenizer folder; None: ids only), which
    checkpoints record so that evaluation reads text the way training did."""

    source: str | None = None

    def __init__(
        self, size: int, specials: Mapping[str, int] | None = None, special_ids: Iterable[int] | None = None
    ) -> None:
        self.size = self.random_range = size
        specials = specials or {}
        self.pad, self.cls, self.sep, self.mask = (specials.get(name) for name in SPECIALS)
        self.special_ids = tuple(sorted(set(specials.values() if special_ids is None else special_ids)))
        self.special_ids_tensor = torch.tensor(self.special_ids, dtype=torch.long)

    @property
    def vocab_size(self) -> int:
        """Ids a model must embed (``size``)."""
        return self.size

    def missing_specials(self) -> list[str]:
        """The masked-LM specials this vocabulary lacks."""
        return [name for name in SPECIALS if getattr(self, name) is None]

    def encode(self, text: str | bytes) -> list[int]:
        raise DataError(f"{type(self).__name__} holds ids only: it encodes no text")

    def decode(self, ids: Iterable[int]) -> str:
        raise DataError(f"{type(self).__name__} holds ids only: it decodes no text")

    def masked_row(self, segment: bytes, max_tokens: int) -> torch.Tensor:
        """``[CLS] tokens [SEP]`` of ``segment``, at most ``max_tokens`` long."""
        return torch.tensor([self.cls, *self.encode(segment)[: max_tokens - 2], self.sep], dtype=torch.long)


class ByteVocabulary(Vocabulary):
    """UTF-8 bytes as tokens: no vocabulary file, nothing to download, every text encodable; with
    ``masked_lm`` also ``[PAD] [CLS] [SEP] [MASK]`` (ids 256..259; replacements stay bytes)."""

    source = "bytes"

    def __init__(self, masked_lm: bool = False) -> None:
        specials = dict(zip(SPECIALS, (PAD, CLS, SEP, MASK), strict=True)) if masked_lm else None
        super().__init__(MLM_VOCAB_SIZE if masked_lm else 256, specials)
        self.random_range = 256

    def encode(self, text: str | bytes) -> list[int]:
        return list(text.encode("utf-8") if isinstance(text, str) else text)

    def decode(self, ids: Iterable[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class HFVocabulary(Vocabulary):
    """A Hugging Face tokenizer from a local directory (``save_pretrained`` output; no network),
    for finetuning pretrained models on their own vocabulary (the ``[hf]`` extra)."""

    def __init__(self, path: str) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError as err:
            raise DataError(f"tokenizer={path!r}: needs transformers: pip install 'lightning-ltd[hf]'") from err
        if not Path(path).is_dir():
            raise DataError(f"tokenizer={path!r}: no such directory (expected a tokenizer save_pretrained folder)")
        if not has_tokenizer(path):
            raise DataError(
                f"tokenizer={path!r}: no tokenizer in the folder ({', '.join(TOKENIZER_FILES)}); "
                "give a tokenizer folder, or null for bytes"
            )
        try:
            with quiet_transformers():  # its warnings about a folder it cannot load are not the error
                self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as err:  # a damaged tokenizer.json, a foreign config: many kinds
            raise DataError(f"tokenizer={path!r}: not a readable tokenizer folder ({first_line(err, 160)})") from err
        self.source = str(Path(path).expanduser().resolve())
        t = self.tokenizer
        specials = {name: getattr(t, f"{name}_token_id") for name in SPECIALS}
        specials = {name: value for name, value in specials.items() if value is not None}
        super().__init__(len(t), specials, t.all_special_ids)

    def encode(self, text: str | bytes) -> list[int]:
        if isinstance(text, bytes):
            text = decode_utf8(text)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode(list(ids))

    def masked_row(self, segment: bytes, max_tokens: int) -> torch.Tensor:
        """The tokenizer's own special-token template (``[CLS] ... [SEP]``, ``<s> ... </s>``)."""
        text = segment.decode("utf-8", errors="replace")  # a segment's cut may split a character
        return torch.tensor(self.tokenizer(text, truncation=True, max_length=max_tokens)["input_ids"])


def shard_tokenizer(meta: Mapping[str, Any], folder: str | os.PathLike[str]) -> str:
    """What encoded a prepared shard folder: ``"bytes"``, or its tokenizer folder (``bpe``
    writes one inside it; a Hugging Face tokenizer's path is recorded as it was given)."""
    kind = str(meta["tokenizer"])
    if kind in ("bytes", "bpe"):
        return "bytes" if kind == "bytes" else str((Path(folder).expanduser() / "tokenizer").resolve())
    return kind


def shard_vocabulary(meta: Mapping[str, Any]) -> Vocabulary:
    """The vocabulary a prepared shard folder's ``meta.json`` describes (ids only, no encoder)."""
    if meta["tokenizer"] == "bytes":
        return ByteVocabulary(masked_lm=True)
    return Vocabulary(int(meta["vocab_size"]), {k: int(v) for k, v in meta.get("specials", {}).items()})


def masked_lm_vocabulary(vocab: Vocabulary, where: str) -> Vocabulary:
    """``vocab``, or one line naming ``where`` and the masked-LM specials it lacks."""
    missing = vocab.missing_specials()
    if missing:
        raise DataError(f"{where}: its vocabulary has no {', '.join(missing)} token(s) for masked-LM")
    return vocab
