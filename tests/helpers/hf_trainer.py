"""A tiny random Llama and a learnable, padded token task for Hugging Face's Trainer (no download)."""

from __future__ import annotations

from typing import Any

import torch
import transformers
from torch import nn

from lightning_ltd import apply_random_ltd

VOCAB, MAX_LEN, PAD = 64, 32, 0


def tiny_llama(dropout: float = 0.1, wrap: bool = True) -> nn.Module:
    """Four layers; the middle two drop tokens (``apply_random_ltd``'s default)."""
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_LEN,
        attention_dropout=dropout,
        pad_token_id=PAD,
    )
    config._attn_implementation = "sdpa"
    model = transformers.LlamaForCausalLM(config)
    return apply_random_ltd(model) if wrap else model


class CountingTask(torch.utils.data.Dataset):
    """Rows of 12..32 tokens counting up from a random start (mod the vocabulary, skipping the
    pad id): the next token is learnable, and batches are padded to their own longest row."""

    def __init__(self, rows: int = 256) -> None:
        generator = torch.Generator().manual_seed(3)
        self.rows = [
            [1 + (int(start) + i) % (VOCAB - 1) for i in range(int(length))]
            for start, length in zip(
                torch.randint(0, VOCAB, (rows,), generator=generator),
                torch.randint(12, MAX_LEN + 1, (rows,), generator=generator),
                strict=True,
            )
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        return {"input_ids": self.rows[index]}


def pad_batch(side: str = "right"):
    """A collator padding each batch to its longest row on ``side``; labels ignore the padding."""

    def collate(items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(item["input_ids"]) for item in items)
        ids = torch.full((len(items), width), PAD)
        mask = torch.zeros(len(items), width, dtype=torch.long)
        for row, item in enumerate(items):
            tokens = torch.tensor(item["input_ids"])
            where = slice(0, len(tokens)) if side == "right" else slice(width - len(tokens), width)
            ids[row, where], mask[row, where] = tokens, 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}

    return collate


def training_args(output_dir: str, **overrides: Any) -> transformers.TrainingArguments:
    settings: dict[str, Any] = {
        "output_dir": output_dir,
        "max_steps": 20,
        "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "learning_rate": 3e-3,
        "logging_steps": 5,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "seed": 0,
        "disable_tqdm": True,
        "remove_unused_columns": False,
        "dataloader_num_workers": 0,
    }
    return transformers.TrainingArguments(**{**settings, **overrides})


class BlockTokens:
    """Counts the tokens every decoder block processes in training forwards (hooks on the blocks
    themselves): the layer-tokens, measured rather than computed."""

    def __init__(self, model: nn.Module) -> None:
        self.total = 0
        layers = model.model.layers
        blocks = [getattr(layer, "block", layer) for layer in layers]
        self.handles = [block.register_forward_pre_hook(self.count, with_kwargs=True) for block in blocks]

    def count(self, block: nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        hidden = args[0] if args else kwargs["hidden_states"]
        if block.training and torch._C._current_graph_task_id() == -1:
            self.total += hidden.shape[0] * hidden.shape[1]
