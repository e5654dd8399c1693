"""A checkpoint's own counters and states, checked against each other before Lightning restores
from them: Lightning's migrations and loops would fail on them with a traceback mid-restore, or
continue from counts that contradict each other."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from typing import Any

from lightning_ltd.errors import is_int


def counter_problem(checkpoint: dict[str, Any]) -> str | None:
    """The first of the problems below (None: the counters agree)."""
    checks = (nested_state_problem, fit_loop_problem, loop_step_problem, progress_problem)
    return next((problem for check in checks if (problem := check(checkpoint)) is not None), None)


COUNTERS = (("global_step", "a step count"), ("epoch", "an epoch count"))
"""Whole counts Lightning restores its loops from (``epoch="x"`` would be taken as it is)."""


VERSION_KEY = "pytorch-lightning_version"


OLDEST_VERSION = "1.0.0"
"""Lightning's migrations read the version (and fail on a missing or unparseable one with a
traceback); checkpoints from before 1.0 have another layout than the one checked here."""


def version_problem(version: Any, name: str) -> str | None:
    """Why the checkpoint ``name``'s Lightning version cannot be migrated from (None: it can)."""
    from packaging.version import InvalidVersion, Version

    if version is None:
        return f"no {VERSION_KEY} in {name} (not saved by Lightning's Trainer)"
    try:
        too_old = Version(str(version)) < Version(OLDEST_VERSION)
    except InvalidVersion:
        return f"{VERSION_KEY}={version!r} in {name} is not a version"
    return f"{VERSION_KEY}={version!r} in {name} is older than Lightning {OLDEST_VERSION}" if too_old else None


def nested_state_problem(checkpoint: dict[str, Any]) -> str | None:
    """The first callback or loop state that is not a mapping (``loops['fit_loop']`` two levels
    deep): Lightning's ``load_state_dict`` calls would fail on it with a traceback mid-restore."""
    states = [(f"callbacks[{name!r}]", state) for name, state in (checkpoint.get("callbacks") or {}).items()]
    schedulers = checkpoint.get("lr_schedulers")
    states += [
        (f"lr_schedulers[{i}]", state) for i, state in enumerate(schedulers if isinstance(schedulers, list) else [])
    ]
    for loop, state in (checkpoint.get("loops") or {}).items():
        states.append((f"loops[{loop!r}]", state))
        if isinstance(state, dict):
            states += [(f"loops[{loop!r}][{part!r}]", value) for part, value in state.items()]
    return next(
        (
            f"its {where} is a {type(state).__name__}, not a state mapping"
            for where, state in states
            if not isinstance(state, dict)
        ),
        None,
    )


def fit_loop_problem(checkpoint: dict[str, Any]) -> str | None:
    """Loops without the fit loop's state: Lightning's restore reads ``loops['fit_loop']`` and
    fails on its absence with a ``KeyError`` mid-restore."""
    loops = checkpoint.get("loops")
    if isinstance(loops, dict) and "fit_loop" not in loops:
        return f"its loops hold no 'fit_loop' (only {sorted(loops) or 'nothing'}): not saved by Trainer.fit"
    return None


LOOP_STEPS = (
    ("epoch_loop.automatic_optimization.optim_progress", "optimizer", "step"),
    ("epoch_loop.manual_optimization.optim_step_progress",),
)
"""Where the fit loop's state counts optimizer steps: Lightning restores ``global_step`` from
these, not from the checkpoint's ``global_step`` entry (which our resume checks read)."""


def loop_step_problem(checkpoint: dict[str, Any]) -> str | None:
    """``global_step`` against the steps its fit loop's state counts: a mismatch is an edited or
    damaged checkpoint, whose step-based checks (``trainer.max_steps``) would be judged wrongly."""
    fit_loop = (checkpoint.get("loops") or {}).get("fit_loop")
    if not isinstance(fit_loop, dict):
        return None
    counted = 0
    for path in LOOP_STEPS:
        node: Any = fit_loop.get(path[0])
        for part in (*path[1:], "total", "completed"):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None  # another Lightning's layout: nothing to compare
        counted += int(node)
    if counted != checkpoint["global_step"]:
        return f"global_step={checkpoint['global_step']} disagrees with the {counted} optimizer steps its loops count"
    return None


PROGRESS_ORDER = ("ready", "started", "processed", "completed")
"""A Lightning progress tracker's counts, each at most the one before (a batch is made ready,
started, processed, then completed)."""


FIT_BATCHES = "epoch_loop.batch_progress"


def progress_problem(checkpoint: dict[str, Any]) -> str | None:
    """The first of the fit loop's training progress trackers whose counts contradict each other
    or the checkpoint's ``global_step``: a count not a whole number >= 0, a later stage above an
    earlier one, or fewer training batches made ready than optimizer steps taken. Lightning would
    restore any of them as they are and resume the data at a position the weights never saw.
    Validation trackers are left alone: they do not steer training, and Lightning's own do not
    keep ``current`` within ``total``."""
    fit_loop = (checkpoint.get("loops") or {}).get("fit_loop")
    trackers = dict(_trackers(fit_loop if isinstance(fit_loop, dict) else {}, "loops.fit_loop"))
    for where, tracker in trackers.items():
        for part in ("total", "current"):
            values = tracker.get(part)
            if not isinstance(values, dict):
                continue
            if (bad := next((k for k, v in values.items() if not is_int(v) or v < 0), None)) is not None:
                return f"{where}.{part}.{bad}={values[bad]!r} is not a count"
            stages = [(key, values[key]) for key in PROGRESS_ORDER if key in values]
            for (earlier, before), (later, after) in pairwise(stages):
                if after > before:
                    return f"{where}.{part}: {later}={after} exceeds {earlier}={before}"
    batches = trackers.get(f"loops.fit_loop.{FIT_BATCHES}", {}).get("total", {}).get("ready")
    if is_int(batches) and batches < checkpoint["global_step"]:
        return f"global_step={checkpoint['global_step']} exceeds the {batches} training batches its loops count"
    return None


def _trackers(state: dict[str, Any], where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every training progress tracker (a mapping with ``total`` or ``current``) in a loop's
    state, by key path; the validation loop's are skipped."""
    for key, value in state.items():
        if not isinstance(value, dict) or "val_loop" in key:
            continue
        if "total" in value or "current" in value:
            yield f"{where}.{key}", value
        else:
            yield from _trackers(value, f"{where}.{key}")
