"""Settings checked against the typed constructor they feed (one schema: the signatures).

Every config group names a ``_target_`` whose ``__init__`` is annotated, ranges included
(``PositiveInt``, ``Fraction``: ``Annotated`` types with ``Bounds``). A value the annotation
excludes (``model.bias=maybe`` for a ``bool``, ``lr.min_lr=abc`` for a ``float``,
``ltd.min_keep=0`` for a ``PositiveInt``) is one problem naming the full key, whatever group,
whatever key: no per-key check to forget. ``checked`` applies the same schema to a constructor
called from Python. Booleans accept only booleans; numbers never accept booleans; an ``int``
accepts a whole float (YAML writes ``3.0e11``). Annotations this does not understand (classes,
callables) accept anything, so the constructor's own checks still decide those.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from lightning_ltd.errors import is_int, is_number, raise_if

if TYPE_CHECKING:  # Hydra and OmegaConf only for config nodes: the constructors' checks need neither
    from omegaconf import DictConfig


@dataclass(frozen=True)
class Bounds:
    """The range of a number annotated ``Annotated[int, Bounds(1)]``: ``[low, high)`` by default."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = True

    def holds(self, value: float) -> bool:
        if not math.isfinite(value):  # inf passes "> 0" and would train on; NaN compares False anyway
            return False
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def words(self, base: Any) -> str:
        if base is int and self.high is None and not self.low_open:
            return "a positive integer" if self.low == 1 else f"an integer >= {self.low}"
        noun = "an integer" if base is int else "a number"
        if self.low is None and self.high is None:
            return f"a finite {noun.removeprefix('a ').removeprefix('an ')}"
        if self.high is None:
            return f"{noun} {'>' if self.low_open else '>='} {self.low}"
        if self.low is None:
            return f"{noun} {'<' if self.high_open else '<='} {self.high}"
        return f"{noun} in {'(' if self.low_open else '['}{self.low}, {self.high}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class Matches:
    """The form of a string annotated ``Annotated[str, Matches(r"...", "DD:HH:MM:SS")]``."""

    pattern: str
    form: str

    def holds(self, value: Any) -> bool:
        return isinstance(value, str) and re.fullmatch(self.pattern, value) is not None

    def words(self, base: Any) -> str:
        return f"a string of the form {self.form}"


PositiveInt = Annotated[int, Bounds(1)]
Count = Annotated[int, Bounds(0)]
PositiveFloat = Annotated[float, Bounds(0, low_open=True)]
NonNegativeFloat = Annotated[float, Bounds(0)]
Fraction = Annotated[float, Bounds(0, 1)]
"""A probability that may be 0 but not 1 (dropout, momentum): ``[0, 1)``."""
OpenFraction = Annotated[float, Bounds(0, 1, low_open=True)]
"""A probability that is neither 0 nor 1 (the masking rate): ``(0, 1)``."""
Seed = Annotated[int, Bounds(0, 2**32 - 1, high_open=False)]
"""What ``seed_everything`` accepts (numpy's seed range): the run's, the data's and the model's."""
HoldOut = Annotated[int, Bounds(2)]
"""``val_every``: every n-th item is held out, so at least every second one trains."""

HYDRA_KEYS = ("_target_", "_convert_", "_partial_", "_recursive_", "_args_")
NO_HINT = object()
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


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


def as_declared(hint: Any, value: Any) -> Any:
    """``value`` as the annotation takes it: an integral float (``1e5`` on a command line) is the
    ``int`` an integer-only annotation declares, so code that counts with it (``range``) gets one;
    unchanged where a float is accepted too, or the value is anything else."""
    if not (isinstance(value, float) and value.is_integer() and accepts(hint, value)):
        return value
    takes_float = any(_base(member) is float and accepts(member, value) for member in _members(hint))
    return value if takes_float else int(value)


def _members(hint: Any) -> list[Any]:
    """A union's members (a single annotation: itself)."""
    inner = typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint
    if typing.get_origin(inner) in (typing.Union, types.UnionType):
        return [m for member in typing.get_args(inner) for m in _members(member)]
    return [hint]


def _base(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


def integral_overrides(node: Any, hints: dict[str, Any]) -> dict[str, int]:
    """The keys of a config ``node`` whose integral float ``as_declared`` makes an ``int``."""
    from omegaconf import OmegaConf

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


def accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` (plain YAML data) is of the annotated type."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        limits = [b for b in hint.__metadata__ if isinstance(b, (Bounds, Matches))]
        return accepts(args[0], value) and all(limit.holds(value) for limit in limits)
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
        if not isinstance(value, Sequence) or isinstance(value, str):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:  # a fixed length: tuple[float, float]
            return len(value) == len(args) and all(accepts(a, v) for a, v in zip(args, value, strict=True))
        item = args[0] if args else None
        return item is None or all(accepts(item, element) for element in value)
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if not isinstance(value, dict):
            return False
        key, item = args if len(args) == 2 else (None, None)
        return all((key is None or accepts(key, k)) and (item is None or accepts(item, v)) for k, v in value.items())
    return True


def describe(hint: Any) -> str:
    """``must be ...`` wording for a user, in YAML's terms."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        limit = next((b for b in hint.__metadata__ if isinstance(b, (Bounds, Matches))), None)
        return describe(args[0]) if limit is None else limit.words(args[0])
    if origin in (typing.Union, types.UnionType):
        members = [describe(member) for member in _merged_literals(args) if member is not type(None)]
        if type(None) in args and len(members) == 1 and members[0].startswith("one of"):
            return f"null or {members[0]}"
        return ", or ".join(members + (["null"] if type(None) in args else []))
    if hint is bool:
        return "true or false"
    words = {int: "an integer", float: "a number", str: "a string"}
    if hint in words:
        return words[hint]
    if origin is typing.Literal:
        return str(args[0]) if len(args) == 1 else "one of " + ", ".join(map(str, args))
    if origin is tuple and args and args[-1] is not Ellipsis and len(set(args)) == 1:
        count = {2: "two", 3: "three"}.get(len(args), str(len(args)))
        return f"{count} {plural(describe(args[0]))}"
    if origin in (list, tuple, Sequence):
        return "a list" + (f" of {plural(describe(args[0]))}" if args else "")
    if origin in (dict, Mapping) or hint in (dict, Mapping):
        if len(args) != 2 or args == (str, Any):
            return "a mapping"
        keys = typing.get_args(args[0]) if typing.get_origin(args[0]) is typing.Literal else ()
        named = f"of {', '.join(map(str, keys))}" if keys else f"with keys {plural(describe(args[0]))}"
        return f"a mapping {named} to {plural(describe(args[1]))}"
    return getattr(hint, "__name__", str(hint))


def _merged_literals(members: tuple[Any, ...]) -> list[Any]:
    """A union's members with its ``Literal`` members as one, at the first one's place and
    without repeats by spelling (Lightning's precision takes both ``16`` and ``"16"``)."""
    literals = [member for member in members if typing.get_origin(member) is typing.Literal]
    if len(literals) < 2:
        return list(members)
    choices = tuple(dict.fromkeys(str(choice) for member in literals for choice in typing.get_args(member)))
    first = members.index(literals[0])
    rest = [member for member in members if member not in literals]
    return [*rest[:first], typing.Literal[choices], *rest[first:]]


def plural(words: str) -> str:
    """``an integer >= 0`` -> ``integers >= 0``: the items of a list or tuple."""
    bare = re.sub(r"^an? ", "", words)
    return re.sub(r"\b(integer|number|string)\b", r"\1s", bare, count=1)


def type_problems(node: DictConfig | None, key: str) -> list[str]:
    """Every value of the group at ``key`` that its target's annotations exclude, each named."""
    from omegaconf import DictConfig

    if not isinstance(node, DictConfig) or "_target_" not in node:
        return []
    return value_problems(node, constructor_hints(str(node._target_)), f"{key}.")


def value_problems(node: DictConfig, hints: dict[str, Any], prefix: str = "") -> list[str]:
    """Every value of ``node`` that its annotation in ``hints`` excludes, named ``prefix + key``."""
    from omegaconf import OmegaConf

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
    from omegaconf import OmegaConf

    if not OmegaConf.is_interpolation(node, name):
        return ""
    raw = str(node._get_node(name)._value())  # type: ignore[union-attr]
    inner = raw[2:-1] if raw.startswith("${") and raw.endswith("}") and raw.count("${") == 1 else ""
    return f" (from {inner})" if inner and ":" not in inner else ""


def _plain(node: DictConfig, name: str) -> Any:
    from omegaconf import OmegaConf

    value = node[name]
    return OmegaConf.to_container(value, resolve=True) if OmegaConf.is_config(value) else value


Init = TypeVar("Init", bound=Callable[..., None])


def checked(init: Init) -> Init:
    """Check a constructor's arguments against its annotations before its body runs: every
    excluded value is one problem ``name=value must be ...`` of one ``InvalidFieldsError``
    (``train.py`` prefixes the group: ``ltd.min_keep=0 must be a positive integer``)."""
    signature = inspect.signature(init)
    named = [p.name for p in signature.parameters.values() if p.kind in NAMED]

    @functools.wraps(init)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
        hints = typing.get_type_hints(init, include_extras=True)
        bound = signature.bind(self, *args, **kwargs).arguments
        raise_if(
            [
                f"{name}={bound[name]!r} must be {describe(hints[name])}"
                for name in named[1:]
                if name in bound and name in hints and not accepts(hints[name], bound[name])
            ]
        )
        call = signature.bind(self, *args, **kwargs)
        for name in named[1:]:
            if name in call.arguments and name in hints:
                call.arguments[name] = as_declared(hints[name], call.arguments[name])
        init(*call.args, **call.kwargs)

    return wrapper  # type: ignore[return-value]


def field_problems(instance: Any) -> list[str]:
    """Every field of a dataclass instance that its annotation excludes, each named."""
    hints = typing.get_type_hints(type(instance), include_extras=True)
    return [
        f"{f.name}={getattr(instance, f.name)!r} must be {describe(hints[f.name])}"
        for f in dataclasses.fields(instance)
        if f.name in hints and not accepts(hints[f.name], getattr(instance, f.name))
    ]
