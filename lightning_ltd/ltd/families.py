"""Per-family rules for blocks whose per-token arguments cannot be told by their names alone.

Most blocks need nothing here: the default rules (``tokens.default_token_rules``) cover
PyTorch's and Hugging Face's names, and any other tensor with a size equal to the sequence
length is an error rather than a silent misalignment. A family registers what only its own
code tells: LitGPT's ``Block`` reads rotary tables named ``cos`` / ``sin`` and a ``mask``;
Hugging Face's layers take ``encoder_hidden_states`` whose token axis is the *encoder's*, so
they pass through untouched even when the encoder is as long as the decoder.

Rules are looked up by the block's class, along its MRO (a base class's rules apply to every
subclass; a subclass's own rules win), by qualified name, so no family's package is imported
to register it. ``register_block_rules`` adds a family of one's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from torch import nn

from lightning_ltd.ltd.tokens import TokenRule, as_rule, gather_alibi, gather_mask, gather_positions, gather_rotary


@dataclass(frozen=True)
class BlockRules:
    """What a family's blocks read per token (``token_kwargs``) and pass as is (``static_kwargs``)."""

    token_kwargs: Mapping[str, TokenRule] = field(default_factory=dict)
    static_kwargs: frozenset[str] = frozenset()


BLOCK_RULES: dict[str, BlockRules] = {
    # LitGPT (litgpt.model.Block.forward(x, cos, sin, mask=None, input_pos=None, input_pos_maxp1=None)):
    # rotary tables [1, T, n] (older releases [T, n]), a [1|B, 1, T, T] mask, KV-cache positions.
    "litgpt.model.Block": BlockRules(
        {"cos": gather_rotary, "sin": gather_rotary, "mask": gather_mask, "input_pos": gather_positions}
    ),
    # BLOOM's ALiBi bias [B*H, 1, T] over the keys: gathered, so kept keys keep their distances.
    "transformers.models.bloom.modeling_bloom.BloomBlock": BlockRules({"alibi": gather_alibi}),
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
    BLOCK_RULES[name] = BlockRules(rules, frozenset(static_kwargs))


def rules_for(block: nn.Module) -> BlockRules:
    """The merged rules of ``block``'s class and its bases (the most derived class wins)."""
    token_kwargs: dict[str, TokenRule] = {}
    static: set[str] = set()
    for cls in reversed(type(block).__mro__):
        rules = BLOCK_RULES.get(qualified_name(cls))
        if rules is not None:
            token_kwargs.update(rules.token_kwargs)
            static |= rules.static_kwargs
    return BlockRules(token_kwargs, frozenset(static))
