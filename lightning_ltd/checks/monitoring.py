"""The metrics callbacks monitor, checked at start against those the module declares it logs.

A ``ModelCheckpoint`` or ``EarlyStopping`` monitor that names a validation metric the module
never logs fails at the first save, after steps are trained and metrics written; the run's
summary would silently leave such a metric out. A module declares its validation metrics as
``validation_metrics`` beside its ``validation_step`` (our objectives and the ViT do); for one
that does not, nothing is checked.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lightning_ltd.callbacks.summary import RunSummary


def monitored_metric_problems(callbacks: Mapping[str, Any], module: Any) -> list[str]:
    """Each ``callbacks.<name>`` whose validation ``monitor`` (or summary ``metrics``) names a
    metric ``module`` does not log, as one problem naming the key and the metrics it does log."""
    logged = declared_validation_metrics(module)
    if not logged:
        return []
    problems = []
    for name, callback in callbacks.items():
        for key, names in _watched(callback):
            unknown = [metric for metric in names if metric not in logged]
            if unknown:
                problems.append(
                    f"callbacks.{name}.{key}: {type(module).__name__} logs no {', '.join(map(repr, unknown))} "
                    f"(its validation metrics: {', '.join(logged)})"
                )
    return problems


def unvalidated_metric_problems(callbacks: Mapping[str, Any], validation_off: str | None) -> list[str]:
    """Each ``callbacks.<name>`` that watches a validation metric while ``validation_off`` (the
    setting that switches validation off, or None) means none is ever logged: a checkpoint
    monitor would never save, early stopping fail at its first check, a summary stay empty."""
    if validation_off is None:
        return []
    return [
        f"callbacks.{name}.{key}={names[0] if key == 'monitor' else names!r} watches a validation metric, "
        f"but {validation_off} switches validation off"
        for name, callback in callbacks.items()
        for key, names in _watched(callback)
    ]


def declared_validation_metrics(module: Any) -> tuple[str, ...] | None:
    """``module``'s ``validation_metrics``, if the class that declares them also defines the
    ``validation_step`` that runs: a subclass that logs more in its own ``validation_step``
    (``GPTWithAccuracy`` in the README) without declaring it gets no check, not a false refusal."""
    mro = type(module).__mro__
    declares = next((cls for cls in mro if "validation_metrics" in vars(cls)), None)
    steps = next((cls for cls in mro if "validation_step" in vars(cls)), None)
    if declares is None or steps is None or not issubclass(declares, steps):
        return None
    return tuple(module.validation_metrics)


def _watched(callback: Any) -> list[tuple[str, list[str]]]:
    """(argument, validation metric names) that ``callback`` reads: a monitor that names a
    validation metric (``val/...``, ``val_...``), a summary's explicit metrics."""
    watched = []
    monitor = getattr(callback, "monitor", None)
    if isinstance(monitor, str) and monitor.startswith("val"):
        watched.append(("monitor", [monitor]))
    if isinstance(callback, RunSummary) and callback.requested_metrics is not None:
        watched.append(("metrics", list(callback.requested_metrics)))
    return watched
