"""Config values checked against the typed constructor they feed (one schema: the signatures).

Every config group names a ``_target_`` whose ``__init__`` is annotated. A value whose type the
annotation excludes (``model.bias=maybe`` for a ``bool``, ``lr.min_lr=abc`` for a ``float``) is
one problem naming the full key, whatever group, whatever key: no per-key check to forget.
Booleans accept only booleans; numbers never accept booleans; an ``int`` accepts a whole float
(YAML writes ``3.0e11``). Annotations this does not understand (classes, callables) accept
anything, so the constructor's own checks still decide those.
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from lightning_ltd.errors import is_int, is_number

HYDRA_KEYS = ("_target_", "_convert_", "_partial_", "_recursive_", "_args_")
NO_HINT = object()
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def constructor_hints(target: str) -> dict[str, Any]:
    """``parameter -> annotation`` of ``target``'s constructor (empty when it cannot be read)."""
    try:
        cls = get_class(target)
    except Exception:  # not a class: nothing to check
        return {}
    for owner in cls.__mro__:  # a constructor that forwards ``*args, **kwargs`` documents none: ask its base
        init = owner.__dict__.get("__init__")
        if init is None:
            continue
        try:
            named = [p for p in inspect.signature(init).parameters.values() if p.kind in NAMED][1:]  # no self
            hints = typing.get_type_hints(init)
        except Exception:  # annotations that do not resolve
            return {}
        if named:
            return {p.name: hints[p.name] for p in named if p.name in hints}
    return {}


def accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` (plain YAML data) is of the annotated type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return any(accepts(member, value) for member in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return is_int(value) or (isinstance(value, float) and value.is_integer())
    if hint is float:
        return is_number(value)
    if hint is str:
        return isinstance(value, str)
    if origin is typing.Literal:
        return value in args
    if origin in (list, tuple, Sequence) or hint in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        item = args[0] if args and (origin is not tuple or (len(args) == 2 and args[1] is Ellipsis)) else None
        return item is None or all(accepts(item, element) for element in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        return isinstance(value, dict)
    return True


def describe(hint: Any) -> str:
    """``must be ...`` wording for a user, in YAML's terms."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        members = [describe(member) for member in args if member is not type(None)]
        return " or ".join(members) + (", or null" if type(None) in args else "")
    if hint is bool:
        return "true or false"
    words = {int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    if origin is typing.Literal:
        return "one of " + ", ".join(map(str, args))
    if origin in (list, tuple, Sequence):
        return "a list" + (f" of {describe(args[0])}" if args and args[0] is not Ellipsis else "")
    return getattr(hint, "__name__", str(hint))


def type_problems(node: DictConfig | None, key: str) -> list[str]:
    """Every value of the group at ``key`` that its target's annotations exclude, each named."""
    if not isinstance(node, DictConfig) or "_target_" not in node:
        return []
    hints = constructor_hints(str(node._target_))
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
            problems.append(f"{key}.{name}={value!r} must be {describe(hint)}")
    return problems


def _plain(node: DictConfig, name: str) -> Any:
    value = node[name]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value
