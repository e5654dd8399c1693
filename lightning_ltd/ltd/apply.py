"""``apply_random_ltd``: random-LTD for a model of one's own, in one call."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from lightning_ltd.ltd.families import refusal
from lightning_ltd.ltd.routing import TokenRouter, find_routers, plan_per_forward
from lightning_ltd.ltd.schedule import default_dropping_layers
from lightning_ltd.ltd.tokens import TokenRule
from lightning_ltd.ltd.wrapper import RandomLTD

ROUTER_NAME = "ltd_router"


def apply_random_ltd(
    model: nn.Module,
    layers: Sequence[int | str] | None = None,
    *,
    blocks: str | None = None,
    keep: int | None = None,
    seed: int = 0,
    rank: int = 0,
    num_protected: int = 0,
    token_kwargs: Mapping[str, TokenRule | int | Sequence[int]] | None = None,
    static_kwargs: Sequence[str] = (),
    num_heads: int | None = None,
    verify: Any = False,
) -> nn.Module:
    """Wrap ``layers`` of ``model`` in ``RandomLTD``, all drawing from one ``TokenRouter``; returns ``model``.

    The router is registered as ``model.ltd_router``; each training forward of ``model`` draws a
    new plan (wrapped layer ``i`` keeps row ``i``), so no two layers keep the same tokens and no
    two forwards the same ones, with no call in a loop of one's own; a block recomputed by
    activation checkpointing keeps the tokens of its forward. ``RandomLTDScheduler`` finds the
    router and sets its kept length and plan counter every micro-batch (exact resume); a loop of
    one's own sets ``model.ltd_router.keep``, and after ``n`` forwards resumes with
    ``model.ltd_router.set_counter(n)``. Eval mode, or ``keep`` None or ``>= T``, is the
    unwrapped model. The state dict keeps its names, so checkpoints of the unwrapped model still load.

    Blocks are called as their model calls them (positionally or by keyword). Per-token
    arguments are gathered by name (``RandomLTD``), with the rules registered for the block's
    class (``lightning_ltd.ltd.families``): Hugging Face Llama, Qwen2, Mistral, GPT-2, BERT and
    ViT layers and LitGPT's ``Block`` need no other argument.

    Args:
        model: any module whose blocks map batch-first ``[B, T, C]`` to ``[B, T, C]``.
        layers: the blocks to wrap: indices into the model's block list (``blocks``) and/or
            module paths (``"encoder.layers.3"``); None: the paper's choice, every block of the
            list but the first and the last (``default_layers``).
        blocks: path of the block list that indices refer to; None: the model's one longest
            ``nn.ModuleList`` / ``nn.Sequential`` of same-class modules.
        keep: the initial kept length (None: no dropping until someone sets it).
        seed: the router's seed (``TokenRouter``).
        num_protected: leading tokens every layer keeps (``TokenRouter``).
        rank: this process's data-parallel rank, part of the plan's key, so that in a DDP loop
            of one's own each rank drops different tokens (``set_rank(model, rank)`` changes it
            later; ``RandomLTDModule`` sets it from Lightning's ``global_rank`` at setup).
        token_kwargs: as ``RandomLTD``'s, for every wrapped layer.
        static_kwargs: as ``RandomLTD``'s, for every wrapped layer.
        num_heads: as ``RandomLTD``'s, for every wrapped layer.
        verify: True: prove the wrapped model exact on a small input made from its config
            (``verify_random_ltd``); or the example inputs to prove it on. False: no check.
    """
    if hasattr(model, ROUTER_NAME):
        raise ValueError(f"model already has {ROUTER_NAME!r}: apply_random_ltd once per model")
    paths = layer_paths(model, layers, blocks)
    router = TokenRouter(len(paths), keep=keep, seed=seed, num_protected=num_protected)
    set_rank(router, rank)
    for path in paths:
        block = model.get_submodule(path)
        if (reason := refusal(block)) is not None:
            raise ValueError(f"layers: {path!r} ({type(block).__name__}) cannot drop tokens exactly: {reason}")
    for index, path in enumerate(paths):
        wrapped = RandomLTD(
            model.get_submodule(path),
            router=router,
            plan_row=index,
            token_kwargs=token_kwargs,
            static_kwargs=static_kwargs,
            num_heads=num_heads,
        )
        model.set_submodule(path, wrapped)
    model.add_module(ROUTER_NAME, router)
    model.register_forward_pre_hook(plan_per_forward)  # a new plan per training forward of the model
    if hasattr(getattr(model, "config", None), "output_router_logits"):  # a mixture of experts
        wrapped = [model.get_submodule(path) for path in paths]
        model.register_forward_pre_hook(functools.partial(router_logits_on_kept_tokens, wrapped), with_kwargs=True)
    if verify is not False:
        from lightning_ltd.ltd.verify import example_inputs, verify_random_ltd  # verify imports this module

        verify_random_ltd(model, example_inputs(model) if verify is True else verify)
    return model


def router_logits_on_kept_tokens(layers: list[RandomLTD], model: nn.Module, args: tuple, kwargs: dict) -> Any:
    """Forward pre-hook of a mixture-of-experts model: its load-balancing loss applies one padding
    mask ``[B, T]`` to the router logits of every layer, while a dropping layer routes only its
    kept tokens. Without a mask the loss counts each layer's routed tokens, as it should, so a
    mask without padding is left out of the call; a padded batch is refused in one line (it
    would fail inside transformers)."""
    wanted = kwargs.get("output_router_logits")
    wanted = model.config.output_router_logits if wanted is None else wanted
    mask = kwargs.get("attention_mask")
    dropping = layers[0].router.keep is not None and any(layer.training for layer in layers)
    if not (wanted and dropping and isinstance(mask, torch.Tensor) and mask.ndim == 2):
        return None
    if bool(mask.all()):
        return args, {**kwargs, "attention_mask": None}
    raise ValueError(
        "output_router_logits=True on a padded batch: the load-balancing loss takes one padding mask for "
        "every layer, and random-LTD layers route only their kept tokens; train on rows without padding "
        "(packed), or with output_router_logits=False"
    )


def set_rank(module: nn.Module, rank: int) -> None:
    """Give every ``TokenRouter`` of ``module`` the data-parallel ``rank`` (an integer >= 0): ranks
    then draw independent plans from one seed, as DistributedSampler gives them different data."""
    if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
        raise ValueError(f"rank={rank!r} must be an integer >= 0")
    for router in find_routers(module):
        router.rank = rank


def layer_paths(model: nn.Module, layers: Sequence[int | str] | None, blocks: str | None) -> list[str]:
    """Module paths of ``layers`` (indices into the block list, or paths; None: the paper's
    middle blocks), checked one by one."""
    if layers is None:
        try:
            layers = default_layers(model, blocks)
        except ValueError as err:
            raise ValueError(f"layers=None: {err}") from err
    if isinstance(layers, (str, int)) or not layers:
        raise ValueError(f"layers={layers!r} must be a non-empty list of block indices or module paths")
    block_list: str | None = None  # found at the first index, then reused
    size = 0
    paths = []
    for item in layers:
        if isinstance(item, bool) or not isinstance(item, (int, str)):
            raise ValueError(f"layers: {item!r} is neither a block index nor a module path")
        if isinstance(item, int):
            if block_list is None:
                block_list = find_block_list(model, blocks)
                size = len(model.get_submodule(block_list))
            if not -size <= item < size:
                raise ValueError(f"layers: index {item} is out of range for the {size} blocks of {block_list!r}")
            paths.append(f"{block_list}.{item % size}" if block_list else str(item % size))
            continue
        try:
            model.get_submodule(item)
        except AttributeError as err:
            raise ValueError(f"layers: {item!r} is not a module path of {type(model).__name__}") from err
        paths.append(item)
    for path in paths:
        if isinstance(model.get_submodule(path), RandomLTD):
            raise ValueError(f"layers: {path!r} is already a RandomLTD layer")
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise ValueError(f"layers: {', '.join(map(repr, repeated))} given more than once")
    return paths


def default_layers(model: nn.Module, blocks: str | None = None) -> list[int]:
    """The paper's choice: every block of the block list but the first and the last, less those
    that cannot drop tokens exactly (GPT-Neo's local layers: ``families.refusal``)."""
    path = find_block_list(model, blocks)
    block_list = model.get_submodule(path)
    middle = default_dropping_layers(len(block_list))
    reasons = {i: refusal(block_list[i]) for i in middle}
    layers = [i for i in middle if reasons[i] is None]
    if not layers:
        why = next((f"{type(block_list[i]).__name__}: {reason}" for i, reason in reasons.items() if reason), "")
        raise ValueError(f"no middle block of {path!r} can drop tokens exactly ({why or 'there are none'})")
    return layers


def find_block_list(model: nn.Module, blocks: str | None) -> str:
    """The path of the block list that layer indices refer to."""
    if blocks is not None:
        try:
            found = model.get_submodule(blocks)
        except AttributeError as err:
            raise ValueError(f"blocks={blocks!r} is not a module path of {type(model).__name__}") from err
        if not isinstance(found, (nn.ModuleList, nn.Sequential)):
            raise ValueError(f"blocks={blocks!r} is a {type(found).__name__}, not an nn.ModuleList or nn.Sequential")
        return blocks
    lists = [
        (len(module), name)
        for name, module in model.named_modules()
        if isinstance(module, (nn.ModuleList, nn.Sequential))
        and len(module) >= 2
        and len({type(child) for child in module}) == 1
    ]
    if not lists:
        raise ValueError(f"{type(model).__name__} has no list of same-class blocks: pass blocks=... or module paths")
    longest = max(size for size, _ in lists)
    names = [name for size, name in lists if size == longest]
    if len(names) > 1:
        raise ValueError(f"several block lists of {longest} blocks ({', '.join(names)}): pass blocks=...")
    return names[0]
