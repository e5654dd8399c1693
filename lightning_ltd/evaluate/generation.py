"""Greedy generation for the harness, as lm-eval's ``HFLM.generate_until`` does it.

Requests are grouped by their generation settings and sorted longest first (the harness's own
``Collator``), batched, each context cut once to its last ``max_length - max_gen_toks`` tokens,
left-padded, and continued greedily with a KV cache: a Hugging Face model by its own
``generate`` with the harness's stop criteria (exactly HFLM's call), our GPT by the cache in its
attention (``SelfAttention``'s ``cache``). The text is decoded without special tokens and cut at
the first stop string, as HFLM cuts it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from lm_eval.models.utils import Collator, handle_stop_sequences, normalize_gen_kwargs, postprocess_generated_text
from torch import nn

from lightning_ltd.errors import InvalidFieldsError


def generate_until(lm: Any, requests: Sequence[Any]) -> list[str]:
    """``HFLM.generate_until``'s batching, cut and post-processing over the engine of ``lm``
    (a ``CausalHarnessLM``: its tokens, sizes and ``continue_rows``)."""
    encoded = {context: lm.tok_encode(context) for context in {request.args[0] for request in requests}}
    collator = Collator(
        [request.args for request in requests],
        sort_fn=lambda request: (-len(encoded[request[0]]), request[0]),
        group_by="gen_kwargs",
        group_fn=lambda request: request[1],
    )
    eos = lm.tok_decode([lm.eot_token_id], skip_special_tokens=False)
    results = []
    for chunk in collator.get_batched(n=lm.batch_size):
        contexts, settings = zip(*chunk, strict=True)
        kwargs = normalize_gen_kwargs(settings[0], lm.max_gen_toks)
        until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
        max_new = int(kwargs.pop("max_gen_toks"))
        if max_new >= lm.max_length:  # HFLM asserts the same
            raise InvalidFieldsError(
                [f"max_gen_toks={max_new} must be below max_length={lm.max_length}: a context needs room beside it"]
            )
        rows = [encoded[context][-(lm.max_length - max_new) :] for context in contexts]
        for tokens in lm.continue_rows(rows, max_new, until):
            text = lm.tok_decode(tokens)
            results.append(postprocess_generated_text(text, until, None))
    return collator.get_original(results)


def left_padded(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, attention_mask)`` ``[B, T]``, padded on the left as the harness batches contexts."""
    width = max(len(row) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


@torch.no_grad()
def hf_generate(
    model: nn.Module, tokenizer: Any, rows: Sequence[Sequence[int]], max_new: int, until: list[str], pad_id: int
) -> list[list[int]]:
    """The new tokens of each row by ``model.generate``, called as ``HFLM._model_generate`` calls it."""
    from lm_eval.models.utils_hf import stop_sequences_criteria  # transformers': only with a transformers model

    ids, mask = left_padded(rows, pad_id)
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    out = model.generate(
        input_ids=ids,
        attention_mask=mask,
        max_length=ids.shape[1] + max_new,
        stopping_criteria=stop_sequences_criteria(tokenizer, until, ids.shape[1], ids.shape[0]),
        pad_token_id=pad_id,
        use_cache=True,
        do_sample=False,
    )
    return [row[ids.shape[1] :] for row in out.tolist()]


@torch.no_grad()
def cached_greedy(
    model: nn.Module, rows: Sequence[Sequence[int]], max_new: int, stopped: Any, pad_id: int = 0
) -> list[list[int]]:
    """The new tokens of each row by our GPT with a KV cache: one forward over the left-padded
    contexts (positions counted from each row's first real token, as ``generate`` counts them),
    then one token per forward; done when every row holds a stop string (``stopped(tokens)``)."""
    device = next(model.parameters()).device
    ids, mask = (t.to(device) for t in left_padded(rows, pad_id))
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    cache: dict[nn.Module, tuple[torch.Tensor, torch.Tensor]] = {}
    logits = model(ids, position_ids=positions, attn_mask=mask.bool(), cache=cache)[:, -1]
    new: list[list[int]] = [[] for _ in rows]
    for _ in range(max_new):
        tokens = logits.argmax(dim=-1)
        for row, token in zip(new, tokens.tolist(), strict=True):
            row.append(token)
        if len(new[0]) == max_new or all(stopped(row) for row in new):
            break
        mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
        positions = positions[:, -1:] + 1
        logits = model(tokens[:, None], position_ids=positions, attn_mask=mask.bool(), cache=cache)[:, -1]
    return new
