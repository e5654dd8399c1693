"""Tiny random configs of the families beyond the README's (issue 38's list and more), each with
the verdict ``verify_random_ltd`` must reach: exact, or refused in one line (no download)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import transformers

DECODER = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 64,
}
ENCODER = {
    "vocab_size": 64,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "max_position_embeddings": 64,
}
IMAGE = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "image_size": 16,
    "patch_size": 4,
    "num_channels": 1,
}


@dataclass
class Variant:
    name: str
    model: str  # the transformers class
    config: str
    settings: dict[str, Any]
    kind: str = "causal"  # causal | encoder | image
    refused: str | None = None  # text of the one-line refusal, or None: exact
    attn: str = "eager"
    extra: dict[str, Any] = field(default_factory=dict)

    def build(self) -> torch.nn.Module:
        torch.manual_seed(0)
        config = getattr(transformers, self.config)(**self.settings)
        config._attn_implementation = self.attn
        return getattr(transformers, self.model)(config)

    def inputs(self, padded: bool = True) -> dict[str, torch.Tensor]:
        generator = torch.Generator().manual_seed(1)
        if self.kind == "image":
            return {"pixel_values": torch.randn(2, 1, 16, 16, generator=generator)}
        ids = torch.randint(1, 64, (2, 32), generator=generator)
        mask = torch.ones(2, 32, dtype=torch.long)
        if padded:
            mask[0, :7] = 0 if self.kind == "causal" else 1  # left padding for decoders
            mask[1, -5:] = 0 if self.kind == "encoder" else 1  # right padding for encoders
        return {"input_ids": ids, "attention_mask": mask, **self.extra}


VARIANTS = [
    Variant("gemma", "GemmaForCausalLM", "GemmaConfig", {**DECODER, "head_dim": 8}),
    Variant("gemma2", "Gemma2ForCausalLM", "Gemma2Config", {**DECODER, "head_dim": 8, "sliding_window": 8}),
    Variant("gemma3", "Gemma3ForCausalLM", "Gemma3TextConfig", {**DECODER, "head_dim": 8, "sliding_window": 8}),
    Variant("phi", "PhiForCausalLM", "PhiConfig", {**DECODER}),
    Variant("phi3", "Phi3ForCausalLM", "Phi3Config", {**DECODER, "pad_token_id": 0}),
    Variant("falcon", "FalconForCausalLM", "FalconConfig", {**DECODER, "new_decoder_architecture": True}),
    Variant("falcon-alibi", "FalconForCausalLM", "FalconConfig", {**DECODER, "alibi": True}),
    Variant("gpt-neox", "GPTNeoXForCausalLM", "GPTNeoXConfig", {**DECODER}),
    Variant(
        "opt",
        "OPTForCausalLM",
        "OPTConfig",
        {
            "vocab_size": 64,
            "hidden_size": 32,
            "ffn_dim": 64,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "max_position_embeddings": 64,
            "word_embed_proj_dim": 32,
        },
    ),
    Variant(
        "gpt-j",
        "GPTJForCausalLM",
        "GPTJConfig",
        {"vocab_size": 64, "n_embd": 32, "n_layer": 4, "n_head": 4, "n_positions": 64, "rotary_dim": 4},
    ),
    Variant("stablelm", "StableLmForCausalLM", "StableLmConfig", {**DECODER}),
    Variant("olmo", "OlmoForCausalLM", "OlmoConfig", {**DECODER, "pad_token_id": 0}),
    Variant("olmo2", "Olmo2ForCausalLM", "Olmo2Config", {**DECODER, "pad_token_id": 0}),
    Variant("qwen3", "Qwen3ForCausalLM", "Qwen3Config", {**DECODER, "head_dim": 8}),
    Variant("mixtral", "MixtralForCausalLM", "MixtralConfig", {**DECODER, "num_local_experts": 4}),
    Variant(
        "mixtral-router-logits",
        "MixtralForCausalLM",
        "MixtralConfig",
        {**DECODER, "num_local_experts": 4},
        extra={"output_router_logits": True},
        refused="output_router_logits=True on a padded batch",
    ),
    Variant(
        "qwen2-moe",
        "Qwen2MoeForCausalLM",
        "Qwen2MoeConfig",
        {**DECODER, "num_experts": 4, "moe_intermediate_size": 16, "shared_expert_intermediate_size": 32},
    ),
    Variant("granite", "GraniteForCausalLM", "GraniteConfig", {**DECODER}),
    Variant("cohere", "CohereForCausalLM", "CohereConfig", {**DECODER}),
    Variant(
        "bloom", "BloomForCausalLM", "BloomConfig", {"vocab_size": 64, "hidden_size": 32, "n_layer": 4, "n_head": 4}
    ),
    Variant(
        "mpt",
        "MptForCausalLM",
        "MptConfig",
        {"vocab_size": 64, "d_model": 32, "n_layers": 4, "n_heads": 4, "max_seq_len": 64},
        refused="ALiBi bias is one [H, 1, max_seq_len] table",
    ),
    Variant(
        "gpt-neo",
        "GPTNeoForCausalLM",
        "GPTNeoConfig",
        {
            "vocab_size": 64,
            "hidden_size": 32,
            "num_layers": 4,
            "num_heads": 4,
            "attention_types": [[["global", "local"], 2]],
            "window_size": 4,
            "max_position_embeddings": 64,
        },
    ),
    Variant("roberta", "RobertaForMaskedLM", "RobertaConfig", {**ENCODER, "max_position_embeddings": 80}, "encoder"),
    Variant(
        "distilbert",
        "DistilBertForMaskedLM",
        "DistilBertConfig",
        {"vocab_size": 64, "dim": 32, "n_layers": 4, "n_heads": 4, "hidden_dim": 64, "max_position_embeddings": 64},
        "encoder",
    ),
    Variant("electra", "ElectraForMaskedLM", "ElectraConfig", {**ENCODER, "embedding_size": 16}, "encoder"),
    Variant(
        "t5-encoder",
        "T5EncoderModel",
        "T5Config",
        {"vocab_size": 64, "d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 4, "num_heads": 4},
        "encoder",
    ),
    Variant("deit", "DeiTForImageClassification", "DeiTConfig", IMAGE, "image"),
    Variant(
        "beit-shared-bias",
        "BeitForImageClassification",
        "BeitConfig",
        {**IMAGE, "use_shared_relative_position_bias": True},
        "image",
    ),
    Variant(
        "beit-layer-bias",
        "BeitForImageClassification",
        "BeitConfig",
        {**IMAGE, "use_relative_position_bias": True},
        "image",
        refused="2-D grid of patches",
    ),
    Variant(
        "swin",
        "SwinForImageClassification",
        "SwinConfig",
        {
            "image_size": 16,
            "patch_size": 2,
            "num_channels": 1,
            "embed_dim": 8,
            "depths": [4],
            "num_heads": [2],
            "window_size": 2,
        },
        "image",
        refused="2-D grid of patches",
    ),
    Variant(
        "deberta-v2",
        "DebertaV2ForMaskedLM",
        "DebertaV2Config",
        {**ENCODER, "relative_attention": True, "position_buckets": 8, "max_relative_positions": 16},
        "encoder",
        refused="one [T, T] table for every row",
    ),
]
