"""``RandomLTD``: run any block on a random, sorted subset of tokens during training."""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_ltd.ltd.families import rules_for
from lightning_ltd.ltd.routing import RoutedKeep, TokenRouter, plan_per_forward
from lightning_ltd.ltd.tokens import TokenRule, as_rule, default_token_rules, gather_tokens, scatter_tokens

_BLOCK_PREFIX = "block."
_STANDALONE_ROWS = itertools.count()
"""Plan rows handed to wrappers built without a router, in construction order: two such
wrappers never draw the same indices, and the same program draws the same ones again."""


class RandomLTD(nn.Module):
    """Wrap a block ``forward(x: [B, T, C], ...) -> [B, T, C]`` (or a tuple led by it).

    In training mode with ``keep < T`` each row keeps ``keep`` random positions (sorted), the
    block runs on those only, its outputs are written back and dropped tokens pass unchanged.
    In eval mode, or with ``keep`` None or ``>= T``, it is exactly the block's own call.

    The wrapper is called exactly as the block is, positionally or by keyword: positional
    arguments are named by the block's own ``forward`` signature, so each is gathered by the
    rule of its name. The kept indices come from a ``TokenRouter``: our models draw one plan per
    forward and pass each dropping layer its slice as the keyword-only ``kept_indices``;
    ``apply_random_ltd`` gives each wrapped layer its row of one shared router's plan
    (``plan_row``). A wrapper built without a router gets a router of its own and the next
    free plan row, so two such wrappers never keep the same tokens.

    The plan is fixed by the router's counter, which moves on at each training forward of the
    model the router serves (the model ``apply_random_ltd`` wraps, or this wrapper when it has a
    router of its own) unless a driver set it (``RandomLTDScheduler``: exact (step, micro-batch)
    plans). A block run again by activation checkpointing, in backward, keeps the same tokens.

    Per-token arguments are gathered with the tokens, inside tuples and lists too: positions
    (``position_ids``, ``cache_position``), rotary tables (``position_embeddings=(cos, sin)``),
    masks on both token axes (``[B, T]`` key padding, ``[T, T]``, ``[B, T, T]``,
    ``[B*H, T, T]`` and ``[B, H, T, T]``; see ``gather_attn_mask``), plus the rules registered
    for the block's class (``lightning_ltd.ltd.families``: LitGPT's ``cos``/``sin``/``mask``).
    Any other tensor with a size equal to ``T`` on any axis is an error naming the argument.

    Args:
        block: the layer to wrap, batch first (``[B, T, C]``). Its parameters keep their own
            state-dict names (no ``block.`` prefix), so wrapping a pretrained block loads its
            old checkpoint.
        keep: kept tokens per row; None disables dropping. Sets the router's ``keep``.
        router: source of kept indices and holder of the kept length; shared by a model's
            layers. None: a router of this layer's own (``seed``, ``num_protected``).
        plan_row: this layer's row of the router's plan. None: row 0 of a given router (or,
            without a router, the next free row of the wrapper's own).
        token_kwargs: extra per-token arguments to gather, by parameter name, each a rule, a
            token axis or several axes (batch is axis 0); they override the defaults.
        static_kwargs: tensor arguments to pass through untouched even though one of their
            sizes equals ``T`` (otherwise such an undeclared tensor is an error, because passing
            it unchanged would silently misalign it with the kept tokens).
        num_protected: leading tokens (e.g. [CLS]) that are always kept; 0 follows the paper.
            Like ``seed``, it configures the layer's own router (a given ``router`` has its own).
        seed: seed of the layer's own router.
        num_heads: attention heads, to tell ``[B*H, T, T]`` masks from ``[B, T, T]`` ones; None:
            read from an ``nn.MultiheadAttention`` inside ``block`` if there is one.
    """

    keep = RoutedKeep()  # the router's kept length, shared by every layer of that router

    def __init__(
        self,
        block: nn.Module,
        keep: int | None = None,
        *,
        router: TokenRouter | None = None,
        plan_row: int | None = None,
        token_kwargs: Mapping[str, TokenRule | int | Sequence[int]] | None = None,
        static_kwargs: Sequence[str] = (),
        num_protected: int = 0,
        seed: int = 0,
        num_heads: int | None = None,
    ) -> None:
        super().__init__()
        self.block = block
        if router is None:  # a router of its own, which it moves on at each training forward of its own
            router = TokenRouter(1, keep=keep, seed=seed, num_protected=num_protected)
            plan_row = next(_STANDALONE_ROWS) if plan_row is None else plan_row
            self.register_forward_pre_hook(plan_per_forward)
        elif keep is not None:
            router.keep = keep
        self.router = router
        self.plan_row = plan_row or 0
        attention = next((m for m in block.modules() if isinstance(m, nn.MultiheadAttention)), None)
        heads = num_heads if num_heads is not None else getattr(attention, "num_heads", None)
        family = rules_for(block)
        if family.refuse is not None and (reason := family.refuse(block)) is not None:
            raise ValueError(f"RandomLTD: {type(block).__name__} cannot drop tokens exactly: {reason}")
        self.token_rules: dict[str, TokenRule] = default_token_rules(heads, heads_in_batch=attention is not None)
        self.token_rules.update(family.token_kwargs)
        self.token_rules.update({k: as_rule(v) for k, v in (token_kwargs or {}).items()})
        self.static_kwargs = family.static_kwargs | frozenset(static_kwargs)
        self.parameter_names = positional_names(block)
        self._register_state_dict_hook(_strip_block_prefix)
        self.register_load_state_dict_pre_hook(_add_block_prefix)

    def drops(self, seq_len: int) -> bool:
        """Whether a forward pass on ``seq_len`` tokens would drop any."""
        return self.training and self.router.kept_length(seq_len) is not None

    def forward(self, *args: Any, kept_indices: torch.Tensor | None = None, **kwargs: Any) -> Any:
        """The block's own call; ``kept_indices`` ``[B, keep]`` (keyword only): this layer's slice
        of the model's plan (None: this layer's row of the router's current plan)."""
        hidden_name = self.parameter_names[0] if self.parameter_names else None
        by_keyword = len(args) == 0
        if by_keyword and hidden_name not in kwargs:
            raise TypeError(f"RandomLTD: {type(self.block).__name__} got no hidden states (argument {hidden_name!r})")
        x = kwargs[hidden_name] if by_keyword else args[0]
        batch, seq_len = x.shape[0], x.shape[1]
        if kept_indices is None:
            if not self.drops(seq_len):
                return self.block(*args, **kwargs)
            plan = self.router.layer_plan(self.plan_row, batch, seq_len)
            assert plan is not None
            kept_indices = plan[0]
        kept = gather_tokens(x, kept_indices)
        gathered_args = [] if by_keyword else [kept]
        gathered_args += [self._gather(self._name_of(i), v, kept_indices, seq_len) for i, v in enumerate(args[1:], 1)]
        gathered_kwargs = {
            name: kept if name == hidden_name and by_keyword else self._gather(name, value, kept_indices, seq_len)
            for name, value in kwargs.items()
        }
        out = self.block(*gathered_args, **gathered_kwargs)
        if not isinstance(out, tuple):
            return scatter_tokens(x, kept_indices, out)
        # an argument the block hands on (T5 returns the position bias the next layer takes): the
        # next layer gets it as this one did, whole, not as the kept tokens saw it
        given = zip([*args[1:], *kwargs.values()], [*gathered_args[1:], *gathered_kwargs.values()], strict=True)
        handed_on = {id(seen): whole for whole, seen in given if seen is not whole and isinstance(seen, torch.Tensor)}
        return (scatter_tokens(x, kept_indices, out[0]), *(handed_on.get(id(item), item) for item in out[1:]))

    def _name_of(self, position: int) -> str:
        """The block's name for positional argument ``position`` (``*args`` ones by number)."""
        names = self.parameter_names
        return names[position] if position < len(names) else f"positional argument {position}"

    def _gather(self, name: str, value: Any, indices: torch.Tensor, seq_len: int, label: str | None = None) -> Any:
        """One argument, as the kept tokens see it: by the rule of its ``name``, element by element
        in tuples and lists (``label`` names an element in errors: ``position_embeddings[0]``);
        an undeclared tensor with a size equal to ``seq_len`` is refused."""
        label = label or name
        if isinstance(value, (tuple, list)):
            items = [self._gather(name, item, indices, seq_len, f"{label}[{i}]") for i, item in enumerate(value)]
            return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)  # named tuples too
        if not isinstance(value, torch.Tensor) or name in self.static_kwargs:
            return value
        if name in self.token_rules:
            try:
                return self.token_rules[name](value, indices)
            except (ValueError, RuntimeError, IndexError) as err:
                raise ValueError(f"RandomLTD: argument {label!r}: {err}") from err
        if seq_len in value.shape:
            raise ValueError(
                f"RandomLTD: argument {label!r} of {type(self.block).__name__} has shape {tuple(value.shape)}, "
                f"a size equal to the sequence length {seq_len}; declare it in token_kwargs "
                "(to gather it with the kept tokens) or in static_kwargs (to pass it as is)"
            )
        return value


def positional_names(block: nn.Module) -> list[str]:
    """Names of the block's positional parameters, in order, so positional arguments are gathered
    by the rule of their name. Wrappers that forward ``*args`` (activation checkpointing,
    ``torch.compile``) are looked through to the module they wrap."""
    inner = block
    for attribute in ("_checkpoint_wrapped_module", "_orig_mod", "_fsdp_wrapped_module"):
        while isinstance(getattr(inner, attribute, None), nn.Module):
            inner = getattr(inner, attribute)
    try:
        signature = inspect.signature(inner.forward)
    except (TypeError, ValueError):
        return []
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return [p.name for p in signature.parameters.values() if p.kind in positional]


def _strip_block_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, _meta: Any) -> None:
    """State-dict hook: ``prefix.block.name`` -> ``prefix.name`` (wrapping keeps checkpoint names)."""
    inner = prefix + _BLOCK_PREFIX
    for key in [k for k in state_dict if k.startswith(inner)]:
        state_dict[prefix + key[len(inner) :]] = state_dict.pop(key)


def _add_block_prefix(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_args: Any) -> None:
    """Load pre-hook, the inverse of ``_strip_block_prefix`` (prefixed keys are accepted too)."""
    inner = prefix + _BLOCK_PREFIX
    for key in [k for k in state_dict if k.startswith(prefix) and not k.startswith(inner)]:
        state_dict[inner + key[len(prefix) :]] = state_dict.pop(key)


def find_ltd_layers(module: nn.Module) -> list[RandomLTD]:
    """Every ``RandomLTD`` inside ``module``, in registration order."""
    return [m for m in module.modules() if isinstance(m, RandomLTD)]
