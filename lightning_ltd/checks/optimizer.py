"""Checks that a checkpoint's optimizer and LR-scheduler states fit the run's, before loading.

Lightning restores them with ``zip(run's, checkpoint's)``, so a checkpoint with fewer states
than the run has optimizers or schedulers restarts the rest from scratch without a word (an LR
warmup runs again); torch's ``Optimizer.load_state_dict`` casts moments to the parameter's dtype
and takes any value as a hyperparameter (an ``lr`` of ``"fast"``, a negative second moment whose
square root is NaN at the next step). Every check here reads the checkpoint's own states against
a fresh optimizer that ``configure_optimizers`` builds (no step taken, no state allocated).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import lightning as L
import torch

from lightning_ltd.errors import is_number

NON_NEGATIVE_STATES = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "step")
"""Optimizer states that are sums of squares or counts in torch's optimizers (Adam/AdamW,
RMSprop, Adagrad): a negative value cannot come from training."""


def fresh_optimizers(module: L.LightningModule) -> tuple[list[torch.optim.Optimizer], int] | None:
    """The optimizers ``module.configure_optimizers`` returns and how many LR schedulers come
    with them (in any of Lightning's return forms); None when it needs a trainer to run."""
    try:
        configured = module.configure_optimizers()
    except Exception:  # a subclass may read self.trainer, which a check before fit has not got
        return None
    if isinstance(configured, torch.optim.Optimizer):
        return [configured], 0
    if isinstance(configured, dict):
        return [configured["optimizer"]], int(configured.get("lr_scheduler") is not None)
    if (
        isinstance(configured, (list, tuple))
        and len(configured) == 2
        and all(isinstance(part, (list, tuple)) for part in configured)
    ):
        return list(configured[0]), len(configured[1])
    if isinstance(configured, (list, tuple)):
        optimizers = [item["optimizer"] if isinstance(item, dict) else item for item in configured]
        schedulers = sum(isinstance(item, dict) and item.get("lr_scheduler") is not None for item in configured)
        return optimizers, schedulers
    return None


def optimizer_problems(
    saved: list[Any],
    saved_schedulers: int,
    optimizers: list[torch.optim.Optimizer],
    schedulers: int,
    global_step: int | None = None,
) -> list[str]:
    """What of the checkpoint's ``optimizer_states`` and ``lr_schedulers`` does not fit
    ``optimizers`` (the run's, fresh), the run's number of LR schedulers and the checkpoint's
    ``global_step`` (no parameter steps more often than the optimizer); the first problem of
    each optimizer, named by its key path."""
    problems = []
    if len(saved) != len(optimizers):
        problems.append(f"it holds {len(saved)} optimizer state(s), this run has {len(optimizers)} optimizer(s)")
    if saved_schedulers != schedulers:
        problems.append(f"it holds {saved_schedulers} LR scheduler state(s), this run has {schedulers}")
    for index, (state, optimizer) in enumerate(zip(saved, optimizers, strict=False)):  # counts reported above
        found = _first_problem(state, optimizer.state_dict()["param_groups"], _shapes(optimizer), global_step)
        if found is not None:
            problems.append(f"optimizer_states[{index}].{found}")
    return problems


def _shapes(optimizer: torch.optim.Optimizer) -> list[tuple[int, ...]]:
    """Parameter shapes in the order of the optimizer's state keys (0, 1, ... across groups)."""
    return [tuple(p.shape) for group in optimizer.param_groups for p in group["params"]]


def _first_problem(
    state: Any, groups: list[dict[str, Any]], shapes: list[tuple[int, ...]], global_step: int | None
) -> str | None:
    if not isinstance(state, dict) or not isinstance(state.get("param_groups"), list):
        return "param_groups: missing (not an optimizer's state_dict)"
    saved_groups = state["param_groups"]
    if [len(g.get("params", ())) for g in saved_groups if isinstance(g, dict)] != [len(g["params"]) for g in groups]:
        sizes = [len(g.get("params", ())) if isinstance(g, dict) else "?" for g in saved_groups]
        return f"param_groups: parameters per group {sizes}, this run's {[len(g['params']) for g in groups]}"
    for number, (saved_group, group) in enumerate(zip(saved_groups, groups, strict=True)):
        for key, value in group.items():
            if key != "params" and (wrong := _value_problem(saved_group.get(key, _MISSING), value)):
                return f"param_groups[{number}].{key} {wrong}"
    return _state_problem(state.get("state") or {}, shapes, global_step)


_MISSING = object()


def _value_problem(saved: Any, ours: Any) -> str | None:
    """Why ``saved`` cannot stand for the hyperparameter ``ours`` (None: it can)."""
    if saved is _MISSING:  # an older torch's state lacks newer flags; load_state_dict sets their defaults
        return None
    if isinstance(ours, bool) or ours is None:
        return None if saved is None or isinstance(saved, bool) else f"is {saved!r}, not a flag"
    if is_number(ours) or isinstance(ours, torch.Tensor):
        if not _finite_numbers([saved]):
            return f"is {saved!r}, not a finite number"
        return _sign_problem([saved], [ours])
    if isinstance(ours, (tuple, list)) and all(is_number(v) for v in ours):
        fits = isinstance(saved, (tuple, list)) and len(saved) == len(ours) and _finite_numbers(saved)
        return _sign_problem(saved, ours) if fits else f"is {saved!r}, not {len(ours)} finite numbers"
    return None


def _sign_problem(saved: Iterable[Any], ours: Iterable[Any]) -> str | None:
    """A negative value where this run's is >= 0 (an LR, an ``eps``, a beta, a weight decay: none
    of torch's optimizers takes a negative one): a damaged or edited state."""
    pairs = list(zip(saved, ours, strict=True))
    if any(float(theirs) < 0 <= float(own) for theirs, own in pairs):
        shown = [float(theirs) for theirs, _ in pairs]
        return f"is {shown[0] if len(shown) == 1 else shown!r}, negative where this run's is not"
    return None


def _finite_numbers(values: Iterable[Any]) -> bool:
    def finite(value: Any) -> bool:
        if isinstance(value, torch.Tensor):
            return value.numel() == 1 and bool(torch.isfinite(value).all())
        return is_number(value) and math.isfinite(value)

    return all(finite(value) for value in values)


def _state_problem(state: dict[Any, Any], shapes: list[tuple[int, ...]], global_step: int | None) -> str | None:
    """Each parameter's moments: of its parameter's shape, sums of squares and counts >= 0, its
    step count at most the run's optimizer steps. FSDP's full optimizer state is keyed by
    parameter name, not index: its shapes are not compared."""
    for param, moments in state.items():
        by_index = isinstance(param, int) and not isinstance(param, bool)
        if (by_index and not 0 <= param < len(shapes)) or not isinstance(moments, dict):
            return f"state[{param!r}]: no such parameter (this run's optimizer has {len(shapes)})"
        for name, value in moments.items():
            if not isinstance(value, torch.Tensor):
                continue
            if by_index and value.ndim and tuple(value.shape) != shapes[param]:
                return f"state[{param}].{name} has shape {list(value.shape)}, its parameter {list(shapes[param])}"
            if name in NON_NEGATIVE_STATES and bool((value < 0).any()):
                return f"state[{param}].{name} holds negative values (a sum of squares or a count cannot)"
            if name == "step" and global_step is not None and value.numel() == 1 and float(value) > global_step:
                return f"state[{param}].step={float(value):g} exceeds the checkpoint's global_step={global_step}"
    return None
