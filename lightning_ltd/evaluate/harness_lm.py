"""lm-evaluation-harness's model interface over a causal module of this project.

The harness asks three things of a model: the log-likelihood of a continuation after a context
(multiple choice, cloze), the rolling log-likelihood of a whole text (perplexity), and greedy
generation up to stop strings. ``CausalHarnessLM`` answers them with the module's own forward
(``module(ids) -> logits [B, T, V]``, which every ``NextTokenModule`` has: our GPT and any
Hugging Face causal LM) in eval mode, where random-LTD keeps every token and dropout is off, and
the checkpoint's own vocabulary (``data.vocabulary``: bytes or a Hugging Face tokenizer), read
under the same token contract as lm-eval's ``HFLM`` (``evaluate.tokens``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval import utils as harness_utils
from lm_eval.api.model import TemplateLM
from torch import nn

from lightning_ltd.data.vocabulary import Vocabulary
from lightning_ltd.errors import InvalidFieldsError
from lightning_ltd.evaluate.generation import cached_greedy, generate_until, hf_generate
from lightning_ltd.evaluate.tokens import token_contract

Scored = tuple[tuple[str, str], list[int], list[int]]  # (context, continuation), their ids


class CausalHarnessLM(TemplateLM):
    """A next-token module as an lm-evaluation-harness ``LM`` (no dropping, no dropout).

    Args:
        module: an ``nn.Module`` whose ``forward(ids)`` returns next-token logits.
        vocabulary: encodes and decodes text (``ByteVocabulary`` or ``HFVocabulary``).
        batch_size: rows per forward.
        max_length: the longest context (None: the module's ``max_seq_len``).
        max_gen_toks: generation's default cap on new tokens.
        eot_token_id: the end-of-text id where neither the tokenizer nor ``config.json`` has one.
    """

    masked = False

    def __init__(
        self,
        module: nn.Module,
        vocabulary: Vocabulary,
        batch_size: int = 8,
        max_length: int | None = None,
        max_gen_toks: int = 256,
        device: str | torch.device = "cpu",
        eot_token_id: int | None = None,
    ) -> None:
        super().__init__()
        self.module = module.to(device).eval()
        self.vocabulary = vocabulary
        self.tokens = token_contract(vocabulary, module, eot_token_id, masked=self.masked)
        self.batch_size = batch_size
        self.max_length = int(max_length or module.max_seq_len)
        self.max_gen_toks = max_gen_toks
        self._device = torch.device(device)

    @property
    def eot_token_id(self) -> int:
        return self.tokens.eot

    @property
    def prefix_token_id(self) -> int:
        return self.tokens.prefix

    @property
    def tokenizer_name(self) -> str:
        tokenizer = getattr(self.vocabulary, "tokenizer", None)
        return "bytes" if tokenizer is None else str(getattr(tokenizer, "name_or_path", type(tokenizer).__name__))

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs: Any) -> list[int]:
        return self.tokens.encode(string, add_special_tokens)

    def tok_decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return self.tokens.decode(list(ids), skip_special_tokens)

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
        """Greedy continuations, batched and cut as ``HFLM.generate_until`` does (``evaluate.generation``)."""
        return generate_until(self, requests)

    def continue_rows(self, rows: list[list[int]], max_new: int, until: list[str]) -> list[list[int]]:
        """The new tokens after each context: a Hugging Face model by its own ``generate``, our
        GPT with its KV cache, any other module one row at a time over its whole window."""
        inner = getattr(self.module, "model", None)
        if callable(getattr(inner, "generate", None)) and self.tokens.tokenizer is not None:
            return hf_generate(inner, self.tokens.tokenizer, rows, max_new, until, self.tokens.pad)
        stopped = lambda tokens: any(stop in self.tok_decode(tokens) for stop in until)  # noqa: E731
        if getattr(inner, "supports_kv_cache", False):
            return cached_greedy(inner, rows, max_new, stopped, self.tokens.pad)
        return [self.uncached_greedy(row, max_new, stopped) for row in rows]

    @torch.no_grad()
    def uncached_greedy(self, row: list[int], max_new: int, stopped: Any) -> list[int]:
        """Argmax tokens after ``row``, one forward of the whole (already cut) window each."""
        ids, new = list(row) or [self.prefix_token_id], []
        while len(new) < max_new and not stopped(new):
            window = torch.tensor([ids[-self.max_length :]], dtype=torch.long, device=self._device)
            new.append(int(self.module(window)[0, -1].argmax()))
            ids.append(new[-1])
        return new


class MaskedHarnessLM(CausalHarnessLM):
    """A masked-LM module (our BERT, any Hugging Face masked LM) scored by pseudo-log-likelihood
    (Salazar et al., 2020): each continuation token's log-probability with that token masked and
    every other token of ``[CLS] context continuation [SEP]`` visible. Multiple-choice,
    cloze and perplexity tasks work; a masked LM does not generate."""

    masked = True

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
