"""The tokenization contract of evaluation, resolved from the folder as lm-eval's ``HFLM`` does.

- End of text (``eot``): the tokenizer's end token, else ``config.json``'s ``eos_token_id``, else
  an explicit ``eot_token_id=``; a folder with none is one line naming it (HFLM fails on it).
  Bytes have none: a newline, which separates their documents.
- Prefix: what an empty context and the first rolling window are conditioned on: the start token
  where the tokenizer has one (Llama's ``<s>``), else the end token (GPT-2's ``<|endoftext|>``).
- Encoding: ``tokenizer.encode`` with the tokenizer's own special tokens unless the harness asks
  otherwise (``add_special_tokens``), and none added to a text that already starts with the start
  token, exactly as ``HFLM.tok_encode``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lm_eval.models.utils import has_bos_prefix
from torch import nn

from lightning_ltd.data.vocabulary import HFVocabulary, Vocabulary
from lightning_ltd.errors import InvalidFieldsError

BYTE_END_OF_TEXT = 10
"""Byte-level text has no end-of-text id; documents are separated by blank lines, so a newline
is what the harness's empty-context prefix and generation stop on."""


class NoEndOfText(InvalidFieldsError):
    """A tokenizer folder with no end-of-text token anywhere (one line naming it)."""


@dataclass(frozen=True)
class TokenContract:
    vocabulary: Vocabulary
    eot: int
    prefix: int
    masked: bool = False

    @property
    def tokenizer(self) -> Any:
        return getattr(self.vocabulary, "tokenizer", None)

    def encode(self, text: str, add_special_tokens: bool | None = None) -> list[int]:
        """``HFLM.tok_encode``; a masked LM's rows get their ``[CLS] ... [SEP]`` from the scorer."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            return self.vocabulary.encode(text)
        if self.masked:
            add_special_tokens = False
        if add_special_tokens is None and has_bos_prefix(text, tokenizer.decode(self.prefix)):
            add_special_tokens = False
        options = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        return list(tokenizer.encode(text, **options))

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        """``HFLM.tok_decode``: special tokens left out unless asked for."""
        tokenizer = self.tokenizer
        if tokenizer is None:
            return self.vocabulary.decode(ids)
        return str(tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens))

    @property
    def pad(self) -> int:
        """What padding rows carry (masked out): the tokenizer's pad, else unk, else eot, as
        lm-eval's ``configure_pad_token`` chooses it."""
        tokenizer = self.tokenizer
        for token_id in (getattr(tokenizer, "pad_token_id", None), getattr(tokenizer, "unk_token_id", None)):
            if token_id is not None:
                return int(token_id)
        return self.eot


def token_contract(
    vocabulary: Vocabulary, module: nn.Module, eot_token_id: int | None = None, masked: bool = False
) -> TokenContract:
    """The contract for ``module`` read with ``vocabulary``: its tokens from the tokenizer, then
    the model's config (a Hugging Face model's ``eos_token_id``), then ``eot_token_id``."""
    if not isinstance(vocabulary, HFVocabulary):
        end = BYTE_END_OF_TEXT if eot_token_id is None else eot_token_id
        return TokenContract(vocabulary, end, end, masked)
    tokenizer = vocabulary.tokenizer
    candidates = [eot_token_id, tokenizer.eos_token_id, config_end_token(module)]
    if masked:  # a BERT has [SEP] where a causal model has its end token
        candidates += [tokenizer.bos_token_id, vocabulary.sep, vocabulary.cls]
    end = next((int(token) for token in candidates if token is not None), None)
    if end is None:
        raise NoEndOfText(
            [
                f"tokenizer {vocabulary.source!r}: no end-of-text token in the tokenizer nor eos_token_id in "
                "config.json (the harness conditions empty contexts and stops generation on it): pass eot_token_id=ID"
            ]
        )
    start = tokenizer.bos_token_id
    return TokenContract(vocabulary, end, end if start is None else int(start), masked)


def config_end_token(module: nn.Module) -> int | None:
    """A Hugging Face model's ``config.eos_token_id`` (the first of a list)."""
    config = getattr(getattr(module, "model", None), "config", None)
    end = getattr(config, "eos_token_id", None)
    if isinstance(end, list | tuple):
        end = end[0] if end else None
    return end if isinstance(end, int) else None
