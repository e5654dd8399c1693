"""``torch.compile`` for random-LTD models: the whole network, routing included, one graph per shape.

The routing plan reads its key from a device tensor, so drawing it does not break the graph
and a new step does not recompile; ``keep`` is a Python int on the router, so each kept length
is its own static-shape graph. Kept lengths come from the MSLG schedule's granularity grid and
padded widths from the data's buckets (``widths``), so a whole run needs at most

    sum over widths W of (|{kept lengths k < W}| + 1)  training graphs   (+1: no dropping at W)
    + |widths|                                           evaluation graphs

``recompile_limits`` raises dynamo's limits to that bound and makes hitting it an error, so a run
never falls back to eager silently half-way through the ramp; it is a context (the schedule
callback holds it from ``setup`` to ``teardown``), so a fit leaves dynamo's settings as it found them.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
from torch import nn

from lightning_ltd.errors import SettingWarning
from lightning_ltd.ltd.schedule import drops

CompileMode = Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"]

COMPILE_ON_CPU = (
    "model.compile=true on a CPU: compiling takes minutes here and rarely pays back on CPU-sized runs; "
    "it pays off on GPUs (trainer=gpu, model.compile_mode=reduce-overhead). model.compile=false trains now"
)

GRAPH_MARGIN = 4
"""Spare graphs for what the bound does not count (a last partial batch, a sanity check)."""


def compile_model(
    model: nn.Module, *, mode: str | None = None, backend: str | Callable[..., Any] = "inductor"
) -> nn.Module:
    """Compile ``model`` in place with ``fullgraph=True`` and static shapes (state-dict names are
    unchanged); a graph break is an error, not a silent slowdown (going past the graph bound
    too, inside ``recompile_limits``)."""
    if mode == "default":
        mode = None
    model.compile(backend=backend, mode=mode, fullgraph=True, dynamic=False)
    return model


def is_compiled(model: nn.Module) -> bool:
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in model.modules())


def count_graphs(widths: Sequence[int], keeps: Sequence[int | None]) -> int:
    """Static-shape graphs a run compiles: per width, one per kept length below it, one without
    dropping, and one for evaluation (see the module docstring)."""
    distinct_widths = sorted(set(widths))
    training = sum(len({k for k in keeps if k is not None and k < w}) + 1 for w in distinct_widths)
    return training + len(distinct_widths)


def curriculum_graphs(
    length_at: Callable[[int], int], keep_at: Callable[[int], int | None], steps: int, widths: Sequence[int]
) -> int:
    """Graphs of a compiled run under a curriculum: one per (width, kept length) pair its first
    ``steps`` steps train at (a width cut to the step's length), plus one per evaluation width.
    Both schedules only grow, so the pairs are few where both are bucketed, and the steps between
    two changes are skipped (a million-step schedule is counted in milliseconds)."""
    pairs, step = set(), 0
    while step < steps:
        length, keep = length_at(step), keep_at(step)
        for width in {min(w, length) for w in widths}:
            pairs.add((width, keep if drops(keep, width) else None))
        step = min(next_change(length_at, step, steps), next_change(keep_at, step, steps))
    return len(pairs) + len(set(widths))


def next_change(value_at: Callable[[int], Any], step: int, end: int) -> int:
    """The first step after ``step`` (before ``end``, else ``end``) whose value differs, for a
    schedule that only grows: a binary search."""
    value, low, high = value_at(step), step, end
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if value_at(middle) == value else (low, middle)
    return high


def recompile_limits(graphs: int) -> contextlib.AbstractContextManager[None]:
    """A context in which dynamo keeps ``graphs`` (+ margin) graphs of one frame and going past
    that is an error rather than a fall-back to eager; outside it dynamo's settings are unchanged."""
    needed = graphs + GRAPH_MARGIN
    config = torch._dynamo.config
    names = ("recompile_limit", "cache_size_limit", "accumulated_recompile_limit", "accumulated_cache_size_limit")
    changes: dict[str, Any] = {n: needed for n in names if hasattr(config, n) and getattr(config, n) < needed}
    if hasattr(config, "fail_on_recompile_limit_hit"):
        changes["fail_on_recompile_limit_hit"] = True
    return config.patch(changes)


def compile_network(module: Any) -> None:
    """Compile ``module.model``, routing included, as one graph per shape
    (``lightning_ltd.models.compile``) in ``compile_mode`` (``reduce-overhead``: CUDA graphs);
    on a CPU with one warning line, since it rarely pays back there."""
    if is_compiled(module.model):
        return
    if module._trainer is not None and module.trainer.strategy.root_device.type == "cpu":
        warnings.warn(COMPILE_ON_CPU, SettingWarning, stacklevel=3)
    compile_model(module.model, mode=module.hparams.get("compile_mode"))
