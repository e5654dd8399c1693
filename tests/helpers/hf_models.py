"""Tiny random-weight Hugging Face models of every family the wrapper supports (no download)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import transformers
from torch import nn

from lightning_ltd.ltd import find_routers

VOCAB, SEQ, WIDTH, LAYERS = 64, 32, 32, 4


@dataclass
class Family:
    """How to build and call one family's model."""

    name: str
    kind: str  # "causal", "masked" or "image"
    rotary: bool
    config: dict[str, Any]

    def build(self, dropout: float = 0.0, attn_implementation: str = "sdpa") -> nn.Module:
        torch.manual_seed(0)
        config_class, model_class = CLASSES[self.name.split("-")[0]]
        config = config_class(**self.config, **dropout_fields(self.name, dropout))
        config._attn_implementation = attn_implementation
        return model_class(config)

    def inputs(self, batch: int = 3, padded: bool = False) -> dict[str, torch.Tensor]:
        """Arguments of one forward: tokens (with a padding mask) or images."""
        generator = torch.Generator().manual_seed(1)
        if self.kind == "image":
            return {"pixel_values": torch.randn(batch, 1, 16, 16, generator=generator)}
        ids = torch.randint(0, VOCAB, (batch, SEQ), generator=generator)
        if not padded:
            return {"input_ids": ids}
        mask = torch.ones(batch, SEQ, dtype=torch.long)
        if self.kind == "causal":
            mask[0, :9] = 0  # left padding: real tokens must never see it, in any layer
        else:
            mask[0, -9:] = 0
            mask[1, -4:] = 0
        return {"input_ids": ids, "attention_mask": mask}

    def seq_len(self) -> int:
        return 17 if self.kind == "image" else SEQ  # ViT: 16 patches + [CLS]


def dropout_fields(name: str, p: float) -> dict[str, float]:
    family = name.split("-")[0]
    if family in ("llama", "qwen2", "mistral"):
        return {"attention_dropout": p}
    if family == "gpt2":
        return {"resid_pdrop": p, "embd_pdrop": p, "attn_pdrop": p}
    return {"hidden_dropout_prob": p, "attention_probs_dropout_prob": p}


DECODER = {
    "vocab_size": VOCAB,
    "hidden_size": WIDTH,
    "intermediate_size": 64,
    "num_hidden_layers": LAYERS,
    "num_attention_heads": 4,
    "max_position_embeddings": 64,
    "use_cache": False,
}
CLASSES = {
    "llama": (transformers.LlamaConfig, transformers.LlamaForCausalLM),
    "qwen2": (transformers.Qwen2Config, transformers.Qwen2ForCausalLM),
    "mistral": (transformers.MistralConfig, transformers.MistralForCausalLM),
    "gpt2": (transformers.GPT2Config, transformers.GPT2LMHeadModel),
    "bert": (transformers.BertConfig, transformers.BertForMaskedLM),
    "vit": (transformers.ViTConfig, transformers.ViTForImageClassification),
}
ENCODER = {"hidden_size": WIDTH, "num_hidden_layers": LAYERS, "num_attention_heads": 4, "intermediate_size": 64}
FAMILIES = [
    Family("llama", "causal", True, {**DECODER, "num_key_value_heads": 4}),
    Family("llama-gqa", "causal", True, {**DECODER, "num_key_value_heads": 2}),
    Family("qwen2", "causal", True, {**DECODER, "num_key_value_heads": 2}),
    Family("mistral", "causal", True, {**DECODER, "num_key_value_heads": 2, "sliding_window": None}),
    Family(
        "gpt2",
        "causal",
        False,
        {
            "vocab_size": VOCAB,
            "n_embd": WIDTH,
            "n_layer": LAYERS,
            "n_head": 4,
            "n_positions": 64,
            "use_cache": False,
            "bos_token_id": 0,
            "eos_token_id": 0,
        },
    ),
    Family("bert", "masked", False, {**ENCODER, "vocab_size": VOCAB, "max_position_embeddings": 64}),
    Family("vit", "image", False, {**ENCODER, "image_size": 16, "patch_size": 4, "num_channels": 1, "num_labels": 3}),
]
BY_NAME = {family.name: family for family in FAMILIES}


def outputs(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The logits under plan 0 (a wrapped model draws a new plan per training forward): two calls
    compare the same kept tokens."""
    for router in find_routers(model):
        router.set_counter(0)
    return model(**inputs).logits


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The block list of any family here."""
    for path in ("model.layers", "transformer.h", "bert.encoder.layer", "vit.layers", "vit.encoder.layer"):
        try:
            return model.get_submodule(path)
        except AttributeError:
            continue
    raise AttributeError(f"no block list in {type(model).__name__}")
