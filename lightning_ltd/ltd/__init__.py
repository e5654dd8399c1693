"""Random-LTD in plain PyTorch: sampling, gather/scatter, the wrapper and the schedules."""

from lightning_ltd.ltd.apply import apply_random_ltd, set_rank
from lightning_ltd.ltd.families import BlockRules, register_block_rules, rules_for
from lightning_ltd.ltd.lr import LayerTokenLR, LayerTokenLRScheduler, RunShape, StepLR
from lightning_ltd.ltd.routing import (
    TokenRouter,
    draw_plan,
    find_routers,
    next_plan,
    plan_counter,
    step_seed,
    stream_id,
)
from lightning_ltd.ltd.schedule import (
    budget_saving,
    default_dropping_layers,
    effective_tokens,
    full_layer_tokens,
    layer_tokens_per_step,
    mslg_keep,
    schedule_saving,
    validate_dropping_layers,
    warmup_decay_lr,
)
from lightning_ltd.ltd.tokens import (
    gather_attn_mask,
    gather_key_padding,
    gather_mask,
    gather_positions,
    gather_rotary,
    gather_tokens,
    scatter_tokens,
    token_axes,
)
from lightning_ltd.ltd.verify import VerificationError, verify_random_ltd
from lightning_ltd.ltd.wrapper import RandomLTD, find_ltd_layers

__all__ = [
    "apply_random_ltd",
    "set_rank",
    "BlockRules",
    "gather_positions",
    "gather_rotary",
    "next_plan",
    "register_block_rules",
    "rules_for",
    "gather_attn_mask",
    "gather_key_padding",
    "LayerTokenLR",
    "LayerTokenLRScheduler",
    "RunShape",
    "StepLR",
    "RandomLTD",
    "TokenRouter",
    "budget_saving",
    "default_dropping_layers",
    "effective_tokens",
    "draw_plan",
    "find_ltd_layers",
    "find_routers",
    "full_layer_tokens",
    "gather_mask",
    "gather_tokens",
    "layer_tokens_per_step",
    "mslg_keep",
    "scatter_tokens",
    "plan_counter",
    "step_seed",
    "stream_id",
    "warmup_decay_lr",
    "schedule_saving",
    "token_axes",
    "validate_dropping_layers",
    "VerificationError",
    "verify_random_ltd",
]
