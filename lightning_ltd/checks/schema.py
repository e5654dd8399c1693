"""Settings checked against the typed constructor they feed (one schema: the signatures).

Every config group names a ``_target_`` whose ``__init__`` is annotated, ranges included
(``lightning_ltd.ranges``: pydantic ``Field`` declarations such as ``PositiveInt``). Pydantic checks each value
against its annotation, in strict mode (booleans only for ``bool``, never a string for a number),
except that a whole float reaches an integer (YAML writes ``3.0e11``). A value the annotation
excludes (``model.bias=maybe``, ``lr.min_lr=abc``, ``ltd.min_keep=0``) is one problem naming the
full key, whatever group, whatever key: no per-key check to forget. ``checked`` applies the same
schema to a constructor called from Python. The words of a problem come from the same
declaration (``describe``). Annotations pydantic cannot check (protocols, classes) accept
anything, so the constructor's own checks still decide those.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

import annotated_types
from pydantic import PydanticSchemaGenerationError, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from lightning_ltd.errors import raise_if
from lightning_ltd.ranges import (  # noqa: F401 (re-exported: the constructors' declared types)
    Count,
    Form,
    Fraction,
    HoldOut,
    NonNegativeFloat,
    OpenFraction,
    PositiveFloat,
    PositiveInt,
    Range,
    Seed,
    WholePercent,
)

HYDRA_KEYS = ("_target_", "_convert_", "_partial_", "_recursive_", "_args_")
NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def as_declared(hint: Any, value: Any) -> Any:
    """``value`` as the annotation takes it: an integral float (``1e5`` on a command line) is the
    ``int`` an integer-only annotation declares, so code that counts with it (``range``) gets one;
    unchanged where a float is accepted too (``val_check_interval=1.0`` is not ``1``), or the
    value is anything else."""
    if not (isinstance(value, float) and value.is_integer()):
        return value
    members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    if any(_base(member) is float and _valid(member, value) for member in members):
        return value
    return int(value) if _valid(hint, int(value)) else value


def _base(hint: Any) -> Any:
    return typing.get_args(hint)[0] if typing.get_origin(hint) is Annotated else hint


@functools.cache
def _adapter(hint: Any) -> TypeAdapter[Any] | None:
    """Pydantic's validator of ``hint``; None where pydantic cannot build one (a protocol, a class)."""
    try:
        return TypeAdapter(hint)
    except (PydanticSchemaGenerationError, TypeError, NameError):
        return None


def _valid(hint: Any, value: Any) -> bool:
    adapter = _adapter(hint)
    if adapter is None:  # a union with a member pydantic cannot check: judge the members one by one
        members = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else ()
        return not members or any(_valid(member, value) for member in members)
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


def accepts(hint: Any, value: Any) -> bool:
    """Whether ``value`` (YAML data: OmegaConf's containers too) is of the annotated type:
    pydantic, strict, with a whole float for an integer and any sequence for a list or tuple."""
    value = _plain_data(value)
    if isinstance(value, float) and value.is_integer():
        return _valid(hint, value) or _valid(hint, int(value))
    if isinstance(value, list):
        return _valid(hint, value) or _valid(hint, tuple(value))
    return _valid(hint, value)


def _plain_data(value: Any) -> Any:
    """Sequences as lists and mappings as dicts, all the way down (a ListConfig, a tuple)."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain_data(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain_data(item) for key, item in value.items()}
    return value


def describe(hint: Any) -> str:
    """``must be ...`` wording for a user, in YAML's terms."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is Annotated:
        declared = next((m for m in hint.__metadata__ if isinstance(m, FieldInfo)), None)
        if declared is not None and declared.description:
            return declared.description
        return range_words(args[0], declared.metadata) if declared is not None else describe(args[0])
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


def range_words(base: Any, limits: list[Any]) -> str:
    """``Range(ge=1)`` on an int -> ``a positive integer``; ``Range(ge=0, lt=1)`` ->
    ``a number in [0, 1)``."""
    bound = {type(limit).__name__.lower(): limit for limit in limits if _is_bound(limit)}
    bound = {name: getattr(limit, name) for name, limit in bound.items()}
    low, high = bound.get("ge", bound.get("gt")), bound.get("le", bound.get("lt"))
    noun = "an integer" if base is int else "a number"
    if base is int and high is None and "ge" in bound:
        return "a positive integer" if low == 1 else f"an integer >= {low}"
    if low is None and high is None:
        return f"a finite {noun.split(' ', 1)[1]}"
    if high is None:
        return f"{noun} {'>' if 'gt' in bound else '>='} {low}"
    if low is None:
        return f"{noun} {'<' if 'lt' in bound else '<='} {high}"
    return f"{noun} in {'(' if 'gt' in bound else '['}{low}, {high}{')' if 'lt' in bound else ']'}"


def _is_bound(limit: Any) -> bool:
    return isinstance(limit, (annotated_types.Ge, annotated_types.Gt, annotated_types.Le, annotated_types.Lt))


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
