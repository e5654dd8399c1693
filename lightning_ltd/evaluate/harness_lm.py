"""lm-evaluation-harness's model interface over a causal module of this project.

The harness asks three things of a model: the log-likelihood of a continuation after a context
(multiple choice, cloze), the rolling log-likelihood of a whole text (perplexity), and greedy
generation up to stop strings. ``CausalHarnessLM`` answers them with the module's own forward
(``module(ids) -> logits [B, T, V]``, which every ``NextTokenModule`` has: our GPT and any
Hugging Face causal LM) in eval mode, where random-LTD keeps every token and dropout is off, and
the checkpoint's own vocabulary (``data.vocabulary``: bytes or a Hugging Face tokenizer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval import utils as harness_utils
from lm_eval.api.model import TemplateLM
from torch import nn

from lightning_ltd.data.vocabulary import HFVocabulary, Vocabulary
from lightning_ltd.errors import InvalidFieldsError

Scored = tuple[tuple[str, str], list[int], list[int]]  # (context, continuation), their ids
BYTE_END_OF_TEXT = 10
"""Byte-level text has no end-of-text id; documents are separated by blank lines, so a newline
is what the harness's empty-context prefix and generation stop on."""


def end_of_text_id(vocabulary: Vocabulary) -> int:
    """The id the harness conditions an empty context on: the tokenizer's end-of-text (eos,
    else bos), a newline for bytes."""
    if isinstance(vocabulary, HFVocabulary):
        tokenizer = vocabulary.tokenizer
        for token_id in (tokenizer.eos_token_id, tokenizer.bos_token_id, vocabulary.sep, vocabulary.cls):
            if token_id is not None:
                return int(token_id)
        return 0
    return BYTE_END_OF_TEXT


class CausalHarnessLM(TemplateLM):
    """A next-token module as an lm-evaluation-harness ``LM`` (no dropping, no dropout).

    Args:
        module: an ``nn.Module`` whose ``forward(ids)`` returns next-token logits.
        vocabulary: encodes and decodes text (``ByteVocabulary`` or ``HFVocabulary``).
        batch_size: rows per forward.
        max_length: the longest context (None: the module's ``max_seq_len``).
        max_gen_toks: generation's default cap on new tokens.
    """

    def __init__(
        self,
        module: nn.Module,
        vocabulary: Vocabulary,
        batch_size: int = 8,
        max_length: int | None = None,
        max_gen_toks: int = 256,
        device: str | torch.device = "cpu",
    ) -> None:
        super().__init__()
        self.module = module.to(device).eval()
        self.vocabulary = vocabulary
        self.batch_size = batch_size
        self.max_length = int(max_length or module.max_seq_len)
        self.max_gen_toks = max_gen_toks
        self._device = torch.device(device)

    @property
    def eot_token_id(self) -> int:
        return end_of_text_id(self.vocabulary)

    @property
    def tokenizer_name(self) -> str:
        tokenizer = getattr(self.vocabulary, "tokenizer", None)
        return "bytes" if tokenizer is None else str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__))

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        return self.vocabulary.encode(string)

    def tok_decode(self, ids: Sequence[int]) -> str:
        return self.vocabulary.decode(ids)

    @torch.no_grad()
    def tail_log_probs(self, rows: Sequence[Sequence[int]], tails: Sequence[int]) -> list[torch.Tensor]:
        """Log-probabilities ``[tail, V]`` (float32) of the token after each of the last ``tail``
        positions of each row, in ``batch_size`` forwards, longest rows together (less padding).
        Only those positions are normalised: a 50k vocabulary over every position of a batch of
        2,048-token rows would be gigabytes. Rows are right-padded: a causal model's positions
        never see the padding after them."""
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        out: dict[int, torch.Tensor] = {}
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            ids = torch.zeros(len(chunk), len(rows[chunk[0]]), dtype=torch.long)
            for i, index in enumerate(chunk):
                ids[i, : len(rows[index])] = torch.tensor(rows[index], dtype=torch.long)
            logits = self.module(ids.to(self._device))
            for i, index in enumerate(chunk):
                end = len(rows[index])
                out[index] = F.log_softmax(logits[i, end - tails[index] : end].float(), dim=-1).cpu()
        return [out[i] for i in range(len(rows))]

    def _loglikelihood_tokens(self, requests: list[Scored], disable_tqdm: bool = False, **kwargs: Any) -> list:
        """Sum of the continuation's log-probabilities, and whether greedy decoding picks it; the
        context is cut from the left to fit ``max_length`` (as the harness's own models do), and
        a continuation longer than that keeps its last ``max_length`` tokens."""
        rows, targets = [], []
        for _, context, continuation in requests:
            whole = (context + continuation)[-(self.max_length + 1) :]
            rows.append(whole[:-1])
            targets.append(continuation[-(len(whole) - 1) :])
        results = []
        for tail, continuation in zip(self.tail_log_probs(rows, [len(t) for t in targets]), targets, strict=True):
            target = torch.tensor(continuation, dtype=torch.long)
            picked = tail.gather(1, target[:, None]).squeeze(1)
            greedy = bool((tail.argmax(dim=-1) == target).all())
            results.append((float(picked.sum()), greedy))
            self.cache_hook.add_partial("loglikelihood", None, results[-1])
        return results

    def loglikelihood_rolling(self, requests: list[Any], disable_tqdm: bool = False) -> list[float]:
        """A whole text's log-likelihood in disjoint windows of at most ``max_length`` predictions,
        each with as much earlier context as fits (the harness's rolling scheme)."""
        results = []
        for (text,) in (request.args for request in requests):
            windows = [
                harness_utils.make_disjoint_window(window)
                for window in harness_utils.get_rolling_token_windows(
                    token_list=self.tok_encode(text),
                    prefix_token=self.prefix_token_id,
                    max_seq_len=self.max_length,
                    context_len=1,
                )
            ]
            scored = self._loglikelihood_tokens([((text, ""), ctx, cont) for ctx, cont in windows])
            results.append(sum(logprob for logprob, _ in scored))
        return results

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        """Greedy continuation of each context, cut at the first stop string."""
        return [self.greedy(context, dict(kwargs)) for context, kwargs in (r.args for r in requests)]

    def greedy(self, context: str, kwargs: dict[str, Any]) -> str:
        until = stop_strings(kwargs.pop("until", None), self.tok_decode([self.eot_token_id]))
        limit = int(kwargs.pop("max_gen_toks", self.max_gen_toks))
        ids = self.tok_encode(context)
        generated: list[int] = []
        for token in self.greedy_tokens(ids, limit):
            generated.append(token)
            text = self.tok_decode(generated)
            if any(stop in text for stop in until):
                return cut_at_stops(text, until)
        return self.tok_decode(generated)

    @torch.no_grad()
    def greedy_tokens(self, ids: list[int], limit: int) -> Iterator[int]:
        """Argmax tokens after ``ids``, one forward each over the last ``max_length`` tokens."""
        row = list(ids) or [self.eot_token_id]
        for _ in range(limit):
            window = torch.tensor([row[-self.max_length :]], dtype=torch.long, device=self._device)
            token = int(self.module(window)[0, -1].argmax())
            row.append(token)
            yield token


def stop_strings(until: str | list[str] | None, end_of_text: str) -> list[str]:
    """The stop strings of a request: its ``until`` plus the end-of-text text."""
    stops = [until] if isinstance(until, str) else list(until or [])
    return [s for s in [*stops, end_of_text] if s]


def cut_at_stops(text: str, stops: Sequence[str]) -> str:
    """``text`` up to its earliest stop string."""
    return text[: min(text.find(s) for s in stops if s in text)]


class MaskedHarnessLM(CausalHarnessLM):
    """A masked-LM module (our BERT, any Hugging Face masked LM) scored by pseudo-log-likelihood
    (Salazar et al., 2020): each continuation token's log-probability with that token masked and
    every other token of ``[CLS] context continuation [SEP]`` visible. Multiple-choice,
    cloze and perplexity tasks work; a masked LM does not generate."""

    def _loglikelihood_tokens(self, requests: list[Scored], disable_tqdm: bool = False, **kwargs: Any) -> list:
        vocab = self.vocabulary
        if None in (vocab.cls, vocab.sep, vocab.mask):
            raise GenerationUnsupported([f"tokenizer {self.tokenizer_name!r} has no [CLS], [SEP] and [MASK] tokens"])
        rows, positions, targets, owners = [], [], [], []
        for index, (_, context, continuation) in enumerate(requests):
            whole = (context + continuation)[-(self.max_length - 2) :]
            scored = min(len(continuation), len(whole))
            row = [vocab.cls, *whole, vocab.sep]
            for position in range(len(row) - 1 - scored, len(row) - 1):
                rows.append([*row[:position], vocab.mask, *row[position + 1 :]])
                positions.append(position)
                targets.append(row[position])
                owners.append(index)
        log_probs = self.masked_log_probs(rows, positions)
        sums, greedy = [0.0] * len(requests), [True] * len(requests)
        for owner, scores, target in zip(owners, log_probs, targets, strict=True):
            sums[owner] += float(scores[target])
            greedy[owner] &= int(scores.argmax()) == target
        return list(zip(sums, greedy, strict=True))

    @torch.no_grad()
    def masked_log_probs(self, rows: Sequence[Sequence[int]], positions: Sequence[int]) -> list[torch.Tensor]:
        """Log-probabilities ``[V]`` at each row's masked position (rows right-padded, the padding
        masked out of attention)."""
        out: list[torch.Tensor] = []
        pad = self.vocabulary.pad if self.vocabulary.pad is not None else 0
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            width = max(len(r) for r in chunk)
            ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention = torch.zeros(len(chunk), width, dtype=torch.long)
            for i, row in enumerate(chunk):
                ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                attention[i, : len(row)] = 1
            logits = self.module(ids.to(self._device), attention.to(self._device)).float()
            at = torch.tensor(positions[start : start + len(chunk)])
            picked = logits[torch.arange(len(chunk)), at.to(self._device)]
            out.extend(F.log_softmax(picked, dim=-1).cpu())
        return out

    def generate_until(self, requests: list[Any], disable_tqdm: bool = False) -> list[str]:
        tasks = sorted({getattr(r, "task_name", "?") for r in requests})
        raise GenerationUnsupported([f"tasks {tasks}: generation tasks need a causal model, not a masked LM"])


class GenerationUnsupported(InvalidFieldsError):
    """What a masked LM cannot do for the harness (one line)."""


def harness_model(module: nn.Module, vocabulary: Vocabulary, **kwargs: Any) -> CausalHarnessLM:
    """The harness ``LM`` for ``module``: by log-likelihood for a causal model, by
    pseudo-log-likelihood for a masked one (``objective == "mlm"``)."""
    from lightning_ltd.evaluate.models import is_masked_lm

    kind = MaskedHarnessLM if is_masked_lm(module) else CausalHarnessLM
    return kind(module, vocabulary, **kwargs)
