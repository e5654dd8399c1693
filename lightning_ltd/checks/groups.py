"""What each config group must build: ``train.py`` calls into the objects it gets (a model's
``ltd_layers``, a callback's hooks), so a ``_target_`` that names another kind of thing, or
nothing importable, is one line at start rather than an ``AttributeError`` mid-run."""

from __future__ import annotations

import importlib
import re
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger

from lightning_ltd.callbacks import Curriculum, RandomLTDScheduler
from lightning_ltd.modules import RandomLTDModule

KINDS: dict[str, tuple[type, str]] = {
    "model": (RandomLTDModule, "a lightning_ltd.modules.RandomLTDModule (GPTModule, HFCausalLMModule, ...)"),
    "data": (L.LightningDataModule, "a LightningDataModule"),
    "ltd": (RandomLTDScheduler, "a lightning_ltd.callbacks.RandomLTDScheduler"),
    "curriculum": (Curriculum, "a lightning_ltd.callbacks.Curriculum"),
    "logger": (Logger, "a Lightning Logger (CSVLogger, TensorBoardLogger, ...)"),
    "trainer": (L.Trainer, "a lightning.pytorch.Trainer"),
    "callbacks": (Callback, "a Lightning Callback"),
}
"""The group (``callbacks.NAME``: its first part) -> the base its object must have, in words."""

LR_METHODS = ("resolve", "lr")
"""An LR schedule is duck-typed (``lightning_ltd.ltd.lr.LRSchedule``): these are what is called."""


def kind_problem(key: str, instance: Any) -> str | None:
    """``key._target_`` built the wrong kind of object (None: the right one, or a group with no
    kind of its own)."""
    group = key.split(".", 1)[0]
    target = type(instance).__module__ + "." + type(instance).__qualname__
    if group == "lr":
        if all(callable(getattr(instance, method, None)) for method in LR_METHODS):
            return None
        return f"{key}._target_ built a {target}, not an LR schedule (lightning_ltd.ltd.LayerTokenLR or StepLR)"
    base, words = KINDS.get(group, (object, ""))
    if isinstance(instance, base):
        return None
    return f"{key}._target_ built a {target}, not {words}"


def import_problem(key: str, err: BaseException, cfg: Any = None) -> str | None:
    """A ``_target_`` Hydra could not import, as one line with the innermost reason (None: ``err``
    is not an import failure)."""
    causes = []
    cause: BaseException | None = err
    while cause is not None:
        causes.append(cause)
        cause = cause.__cause__
    if not any(isinstance(c, ImportError) for c in causes):
        return None
    reason = " ".join(str(causes[-1]).split())
    located = next((found for c in causes if (found := LOCATE_ERROR.search(str(c)))), None)
    if located is not None:  # the group's own _target_, or one nested in it (trainer.profiler)
        target = located.group(1)
        full_key = next((found.group(1) for c in causes if (found := FULL_KEY.search(str(c)))), key)
        full_key = _with_list_indices(cfg, full_key)
        return f"{full_key}._target_={target!r} cannot be imported: {_missing_part(target) or reason}"
    return f"{key}: {reason} (a package it needs is missing)"


def _with_list_indices(cfg: Any, full_key: str) -> str:
    """Hydra names a list item ``trainer.plugins0``; in ``cfg`` that is ``trainer.plugins[0]``."""
    from omegaconf import ListConfig, OmegaConf

    parts: list[str] = []
    for part in full_key.split("."):
        found = re.fullmatch(r"(.*\D)(\d+)", part)
        if cfg is not None and found and not _has(cfg, [*parts, part]):
            owner = OmegaConf.select(cfg, ".".join([*parts, found.group(1)]), default=None)
            if isinstance(owner, ListConfig):
                parts.append(f"{found.group(1)}[{found.group(2)}]")
                continue
        parts.append(part)
    return ".".join(parts)


def _has(cfg: Any, parts: list[str]) -> bool:
    from omegaconf import OmegaConf

    return OmegaConf.select(cfg, ".".join(parts), default=_ABSENT) is not _ABSENT


_ABSENT = object()


def _missing_part(target: str) -> str | None:
    """``lightning_ltd.callbacks has no 'Nope'`` when the module imports but lacks the name (the
    error alone says "No module named 'lightning_ltd.callbacks.Nope'"); None otherwise."""
    module, _, name = target.rpartition(".")
    try:
        found = importlib.import_module(module) if module else None
    except Exception:  # the module itself is missing or broken: the error says so
        return None
    return f"{module} has no {name!r}" if found is not None and not hasattr(found, name) else None


LOCATE_ERROR = re.compile(r"^Error (?:locating target|loading) '([^']+)'")
FULL_KEY = re.compile(r"full_key: (\S+)")
"""How Hydra words a ``_target_`` it cannot import (unlike an ``ImportError`` the constructor
raises for a missing optional package), and the key it names."""
