"""What a config group's ``_target_`` declares, and a config node checked against it.

The annotations of the target's constructor (its bases' too, where it forwards ``**kwargs``),
narrowed by an ``overlay`` for a library's class whose own annotations accept values it then
misuses (``lightning_ltd.checks.settings``). Each value of the node is checked before anything is
built, so every bad key of every group is reported at once, named in full.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from lightning_ltd.checks.schema import HYDRA_KEYS, NAMED, accepts, as_declared, describe

NO_HINT = object()


OVERLAYS: dict[str, type] = {}
"""``_target_ -> class whose annotations narrow that constructor's`` (``overlay``)."""


T = TypeVar("T", bound=type)


def overlay(target: str) -> Callable[[T], T]:
    """Register a class's annotations as narrower types for ``target``'s arguments: for a
    library's constructor (Lightning's ``Trainer``) whose own annotations accept values it then
    misuses (``max_steps=0``, ``accumulate_grad_batches=0``)."""

    def register(cls: T) -> T:
        OVERLAYS[target] = cls
        return cls

    return register


def constructor_hints(target: str) -> dict[str, Any]:
    """``parameter -> annotation`` of ``target``'s constructor, narrowed by the ``overlay`` of its
    class and of every base (a subclass of ``ModelCheckpoint`` takes its overlay; the nearest
    class's wins); empty when it cannot be read."""
    hints = own_constructor_hints(target)
    for narrower in reversed(overlays_of(target)):
        hints.update(typing.get_type_hints(narrower, include_extras=True))
    return hints


def overlays_of(target: str) -> list[type]:
    """The overlays registered for ``target``'s class and its bases, nearest first."""
    cls = resolved_class(target)
    if cls is None:  # not a class: only an overlay of that very name narrows it
        return [OVERLAYS[target]] if target in OVERLAYS else []
    return [OVERLAYS[name] for base in cls.__mro__ for name in OVERLAYS if resolved_class(name) is base]


@functools.cache
def resolved_class(target: str) -> type | None:
    """The class ``target`` names (``lightning.pytorch.Trainer`` is ``...trainer.trainer.Trainer``)."""
    from hydra.utils import get_object

    try:
        found = get_object(target)
    except Exception:  # not importable here
        return None
    return found if isinstance(found, type) else None  # a factory function: nothing to narrow


def own_constructor_hints(target: str) -> dict[str, Any]:
    """The annotations of ``target``'s named constructor arguments; a constructor that forwards
    ``**kwargs`` (or ``*args``) adds its bases' too, down to one that forwards nothing."""
    cls = resolved_class(target)
    if cls is None:  # not a class: nothing to check
        return {}
    hints: dict[str, Any] = {}
    for owner in cls.__mro__:
        init = owner.__dict__.get("__init__")
        if init is None or owner is object:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]  # no self
            annotations = typing.get_type_hints(init, include_extras=True)
        except Exception:  # annotations that do not resolve
            return hints
        for parameter in parameters:
            if parameter.kind in NAMED and parameter.name in annotations:
                hints.setdefault(parameter.name, annotations[parameter.name])
        if not any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in parameters):
            break
    return hints


def integral_overrides(node: Any, hints: dict[str, Any]) -> dict[str, int]:
    """The keys of a config ``node`` whose integral float ``as_declared`` makes an ``int``."""

    found = {}
    for name in node:
        hint = hints.get(str(name), NO_HINT)
        if name in HYDRA_KEYS or hint is NO_HINT or OmegaConf.is_missing(node, name):
            continue
        try:
            value = node[name]
        except Exception:  # an interpolation that does not resolve: Hydra reports it
            continue
        declared = as_declared(hint, value)
        if declared is not value and isinstance(declared, int):
            found[str(name)] = declared
    return found


def type_problems(node: DictConfig | None, key: str) -> list[str]:
    """Every value of the group at ``key`` that its target's annotations exclude, each named."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return []
    return value_problems(node, constructor_hints(str(node._target_)), f"{key}.")


def value_problems(node: DictConfig, hints: dict[str, Any], prefix: str = "") -> list[str]:
    """Every value of ``node`` that its annotation in ``hints`` excludes, named ``prefix + key``."""

    problems = []
    for name in node:
        hint = hints.get(str(name), NO_HINT)
        if name in HYDRA_KEYS or hint is NO_HINT or OmegaConf.is_missing(node, name):
            continue
        try:
            value = _plain(node, str(name))
        except Exception:  # an interpolation that does not resolve: Hydra reports it
            continue
        if not accepts(hint, value):
            source = interpolation_source(node, str(name))
            problems.append(f"{prefix}{name}={value!r}{source} must be {describe(hint)}")
    return problems


def interpolation_source(node: DictConfig, name: str) -> str:
    """`` (from trainer.max_steps)`` when the value is another key's, so the message names the
    key the user set (``lr.total_steps: ${trainer.max_steps}``)."""

    if not OmegaConf.is_interpolation(node, name):
        return ""
    raw = str(node._get_node(name)._value())  # type: ignore[union-attr]
    inner = raw[2:-1] if raw.startswith("${") and raw.endswith("}") and raw.count("${") == 1 else ""
    return f" (from {inner})" if inner and ":" not in inner else ""


def _plain(node: DictConfig, name: str) -> Any:

    value = node[name]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
