"""Per-family rules for blocks whose per-token arguments cannot be told by their names alone.

Most blocks need nothing here: the default rules (``tokens.default_token_rules``) cover
PyTorch's and Hugging Face's names, and any other tensor with a size equal to the sequence
length is an error rather than a silent misalignment. A family registers what only its own
code tells: LitGPT's ``Block`` reads rotary tables named ``cos`` / ``sin`` and a ``mask``;
Hugging Face's layers take ``encoder_hidden_states`` whose token axis is the *encoder's*, so
they pass through untouched even when the encoder is as long as the decoder.

A family whose blocks cannot be exact on a subset of tokens is refused when a block is
wrapped (``refuse``: the reason, in one line): blocks that derive positions from the kept
tokens themselves (GPT-Neo's local window slices its own buffer by the kept length; T5's first
layer computes its relative bias for ``0..k-1``), 2-D windows over the whole image grid (Swin,
BEiT's per-layer relative bias), and relative positions shared by every row (DeBERTa).

Rules are looked up by the block's class, along its MRO (a base class's rules apply to every
subclass; a subclass's own rules win), by qualified name, so no family's package is imported
to register it. ``register_block_rules`` adds a family of one's own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from lightning_ltd.ltd.tokens import (
    TokenRule,
    as_rule,
    gather_alibi,
    gather_mask,
    gather_positions,
    gather_rotary,
    token_axes,
)

Refusal = Callable[[nn.Module], "str | None"]
"""Why a block cannot drop tokens exactly (None: it can)."""


@dataclass(frozen=True)
class BlockRules:
    """What a family's blocks read per token (``token_kwargs``) and pass as is (``static_kwargs``)."""

    token_kwargs: Mapping[str, TokenRule] = field(default_factory=dict)
    static_kwargs: frozenset[str] = frozenset()
    refuse: Refusal | None = None


def always(reason: str) -> Refusal:
    return lambda block: reason


def when(condition: Callable[[nn.Module], bool], reason: str) -> Refusal:
    return lambda block: reason if condition(block) else None


WINDOWS = "its attention windows tile the whole 2-D grid of patches, which a random subset of tokens breaks"
GRID_BIAS = "it builds its relative position bias for the whole 2-D grid of patches from its input's size"
LOCAL = (
    "its local attention slices its own causal buffer by the number of kept tokens, so its window would "
    "count kept tokens instead of original positions; drop tokens in its global layers only"
)
OWN_BIAS = (
    "it computes its relative position bias from the kept tokens' count (positions 0..k-1); "
    "drop tokens in the layers that receive the bias (the default layers 1..L-2)"
)
SHARED_POSITIONS = "its relative positions are one [T, T] table for every row, and each row keeps other tokens"
SHARED_ALIBI = (
    "its ALiBi bias is one [H, 1, max_seq_len] table for every row, sliced to the last keys, and each row "
    "keeps other tokens"
)
LITGPT_WINDOW = (
    "its sliding window is built inside the block for as many tokens as it is given, so it would count "
    "kept tokens instead of original positions; drop tokens in its full-attention layers only"
)
HF = "transformers.models"


def per_layer_bias(block: nn.Module) -> bool:
    """A BEiT-like layer with a relative position bias of its own (on the layer or its attention)."""
    return any(getattr(m, "relative_position_bias", None) is not None for m in (block, *block.children()))


BLOCK_RULES: dict[str, BlockRules] = {
    # LitGPT (litgpt.model.Block.forward(x, cos, sin, mask=None, input_pos=None, input_pos_maxp1=None)):
    # rotary tables [1, T, n] (older releases [T, n]), a [1|B, 1, T, T] mask, KV-cache positions.
    "litgpt.model.Block": BlockRules(
        {"cos": gather_rotary, "sin": gather_rotary, "mask": gather_mask, "input_pos": gather_positions},
        refuse=when(lambda b: bool(getattr(b.attn, "apply_sliding_window_attention", False)), LITGPT_WINDOW),
    ),
    # BLOOM's ALiBi bias [B*H, 1, T] over the keys: gathered, so kept keys keep their distances.
    "transformers.models.bloom.modeling_bloom.BloomBlock": BlockRules({"alibi": gather_alibi}),
    # T5: the first layer's relative bias [1|B, H, T, T] is handed on to the next layers (returned
    # by each: the wrapper hands the ungathered one on); the decoder's cross bias has T queries.
    f"{HF}.t5.modeling_t5.T5Block": BlockRules(
        {"position_bias": gather_mask, "encoder_decoder_position_bias": token_axes(2)},
        refuse=when(lambda b: b.layer[0].SelfAttention.has_relative_attention_bias, OWN_BIAS),
    ),
    f"{HF}.mt5.modeling_mt5.MT5Block": BlockRules(
        {"position_bias": gather_mask, "encoder_decoder_position_bias": token_axes(2)},
        refuse=when(lambda b: b.layer[0].SelfAttention.has_relative_attention_bias, OWN_BIAS),
    ),
    f"{HF}.umt5.modeling_umt5.UMT5Block": BlockRules(refuse=always(OWN_BIAS.split(";")[0] + " in every layer")),
    f"{HF}.gpt_neo.modeling_gpt_neo.GPTNeoBlock": BlockRules(
        refuse=when(lambda b: b.attn.attention_type == "local", LOCAL)
    ),
    f"{HF}.swin.modeling_swin.SwinLayer": BlockRules(refuse=always(WINDOWS)),
    f"{HF}.swinv2.modeling_swinv2.Swinv2Layer": BlockRules(refuse=always(WINDOWS)),
    f"{HF}.donut.modeling_donut_swin.DonutSwinLayer": BlockRules(refuse=always(WINDOWS)),
    f"{HF}.maskformer.modeling_maskformer_swin.MaskFormerSwinLayer": BlockRules(refuse=always(WINDOWS)),
    # BEiT: a bias shared by the layers arrives in the attention mask (gathered); a layer's own is
    # built inside it for as many tokens as it is given
    f"{HF}.beit.modeling_beit.BeitLayer": BlockRules(refuse=when(per_layer_bias, GRID_BIAS)),
    f"{HF}.data2vec.modeling_data2vec_vision.Data2VecVisionLayer": BlockRules(refuse=when(per_layer_bias, GRID_BIAS)),
    f"{HF}.mpt.modeling_mpt.MptBlock": BlockRules(refuse=always(SHARED_ALIBI)),
    # DeBERTa: rel_embeddings is a table of 2 x span rows (it may equal T by chance), not per token
    f"{HF}.deberta_v2.modeling_deberta_v2.DebertaV2Layer": BlockRules(
        static_kwargs=frozenset({"rel_embeddings"}), refuse=always(SHARED_POSITIONS)
    ),
    f"{HF}.deberta.modeling_deberta.DebertaLayer": BlockRules(
        static_kwargs=frozenset({"rel_embeddings"}), refuse=always(SHARED_POSITIONS)
    ),
    # Every Hugging Face layer (transformers 5): cross-attention inputs are the encoder's tokens.
    "transformers.modeling_layers.GradientCheckpointingLayer": BlockRules(
        static_kwargs=frozenset({"encoder_hidden_states", "encoder_attention_mask"})
    ),
}


def qualified_name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def register_block_rules(
    block_class: type | str,
    token_kwargs: Mapping[str, TokenRule | int | Sequence[int]] | None = None,
    static_kwargs: Sequence[str] = (),
) -> None:
    """Give every block of ``block_class`` (a class or its qualified name) these rules from now on."""
    name = block_class if isinstance(block_class, str) else qualified_name(block_class)
    rules = {key: as_rule(value) for key, value in (token_kwargs or {}).items()}
    BLOCK_RULES[name] = BlockRules(rules, frozenset(static_kwargs), BLOCK_RULES.get(name, BlockRules()).refuse)


def rules_for(block: nn.Module) -> BlockRules:
    """The merged rules of ``block``'s class and its bases (the most derived class wins)."""
    token_kwargs: dict[str, TokenRule] = {}
    static: set[str] = set()
    refuse: Refusal | None = None
    for cls in reversed(type(block).__mro__):
        rules = BLOCK_RULES.get(qualified_name(cls))
        if rules is not None:
            token_kwargs.update(rules.token_kwargs)
            static |= rules.static_kwargs
            refuse = rules.refuse or refuse
    return BlockRules(token_kwargs, frozenset(static), refuse)


def refusal(block: nn.Module) -> str | None:
    """Why ``block`` cannot drop tokens exactly, in one line (None: it can)."""
    refuse = rules_for(block).refuse
    return None if refuse is None else refuse(block)
