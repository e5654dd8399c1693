"""What each config group must build: ``train.py`` calls into the objects it gets (a model's
``ltd_layers``, a callback's hooks), so a ``_target_`` that names another kind of thing, or
nothing importable, is one line at start rather than an ``AttributeError`` mid-run."""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hydra
import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from omegaconf import DictConfig, MissingMandatoryValue, OmegaConf

from lightning_ltd.callbacks import Curriculum, RandomLTDScheduler
from lightning_ltd.checks.targets import (
    constructor_hints,
    integral_overrides,
    interpolation_source,
    resolved_class,
    type_problems,
)
from lightning_ltd.errors import ConfigError, InvalidFieldsError, first_line, is_int, stop_if
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


EXTRAS = {"tensorboard": "loggers", "wandb": "loggers", "mlflow": "loggers", "matplotlib": "bench"}
"""The extra that installs a package a group may need."""


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
    extra = next((extra for package, extra in EXTRAS.items() if package in reason), None)
    install = f": pip install 'lightning-ltd[{extra}]'" if extra else ""
    return f"{key}: {reason} (a package it needs is missing{install})"


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


def with_sources(message: str, node: Any, key: str) -> str:
    """``lr.total_steps=-1 (from trainer.max_steps) must be ...``: a value another key set names
    that key, the one the user wrote."""
    parts = []
    for problem in message.split("; "):
        name = problem.removeprefix(f"{key}.").split("=", 1)[0]
        source = interpolation_source(node, name) if isinstance(node, DictConfig) and name in node else ""
        parts.append(_insert(problem, source) if source else problem)
    return "; ".join(parts)


def _insert(problem: str, source: str) -> str:
    """Put `` (from X)`` after the ``key=value`` at the start of ``problem``."""
    head, _, rest = problem.partition(" must ")
    return f"{head}{source} must {rest}" if rest else f"{problem}{source}"


def instantiate_group(cfg: DictConfig, key: str, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` of the (dotted) ``key``, whose field errors name ``key.field``.

    The constructor's own checks speak first (their messages are the most specific); a value of
    a type its annotations exclude is an error too, even where the constructor would accept it
    silently or fail with a message that names no key (``lightning_ltd.checks.schema``)."""
    node = OmegaConf.select(cfg, key)
    if isinstance(node, DictConfig) and "_target_" in node:
        declared = integral_overrides(node, constructor_hints(str(node._target_)))
        kwargs = {**declared, **kwargs}  # ltd.ramp_steps=1e5 reaches the constructor as 100000
    try:
        instance = hydra.utils.instantiate(node, **kwargs)
    except MissingMandatoryValue as err:
        raise ConfigError(f"{err.full_key} must be set: add {err.full_key}=...") from err
    except Exception as err:  # Hydra wraps constructor errors in InstantiationException
        cause = err
        while cause.__cause__ is not None and not isinstance(cause, InvalidFieldsError):
            cause = cause.__cause__
        if isinstance(cause, InvalidFieldsError):
            raise ConfigError(with_sources(cause.prefixed(key), node, key)) from err
        stop_if(type_problems(node, key))
        if (unimportable := import_problem(key, err, cfg)) is not None:
            raise ConfigError(unimportable) from err
        if isinstance(cause, (ValueError, TypeError, MisconfigurationException)) and cause is not err:
            raise ConfigError(f"{key}: {first_line(cause, 1000)}") from err
        if (too_large := out_of_memory(key, cause)) is not None:
            raise too_large from err
        raise
    stop_if(type_problems(node, key))
    if (wrong_kind := kind_problem(key, instance)) is not None:
        raise ConfigError(wrong_kind)
    return instance


def out_of_memory(key: str, err: BaseException) -> ConfigError | None:
    """A failed allocation while building ``key`` as one line with the size it asked for; None:
    ``err`` is not one. Sizes beyond the machine (``data.image_size=100000`` makes the ViT's
    position table) fail in torch's allocator, whose message is a C++ assertion."""
    text = str(err)
    if not (isinstance(err, (MemoryError, torch.OutOfMemoryError)) or "can't allocate memory" in text):
        return None
    found = re.search(r"allocate (\d+) bytes", text)
    requested = f"{int(found.group(1)) / 2**30:.1f} GiB at once" if found else "more than is free"
    return ConfigError(f"{key}: does not fit in memory ({requested}): check its sizes")


@dataclass
class Groups:
    """What the config groups built (None: the group is absent, or failed with a problem)."""

    lr_schedule: Any = None
    scheduler: RandomLTDScheduler | None = None
    datamodule: L.LightningDataModule | None = None
    module: RandomLTDModule | None = None
    named: dict[str, Callback] = field(default_factory=dict)  # callbacks.NAME -> its callback
    curriculum: Curriculum | None = None
    logger: Logger | bool = False  # False: no logger

    @property
    def callbacks(self) -> list[Callback]:
        return [c for c in (self.scheduler, self.curriculum) if c is not None] + list(self.named.values())


def build_groups(cfg: DictConfig, problems: list[str]) -> Groups:
    """Instantiate every group; each group's error joins ``problems``, so one line reports every
    bad group."""

    def attempt(key: str, **kwargs: Any) -> Any:
        try:
            return instantiate_group(cfg, key, **kwargs)
        except ConfigError as err:
            problems.append(str(err))
            return None

    built = Groups(lr_schedule=attempt("lr") if cfg.get("lr") else None)
    built.scheduler = attempt("ltd", lr=built.lr_schedule)
    built.datamodule = attempt("data")
    model_class = resolved_class(str(OmegaConf.select(cfg, "model._target_", default="")))
    if model_class is not None and hasattr(built.datamodule, "use_objective"):  # its batches and sizes: the model's
        built.datamodule.use_objective(getattr(model_class, "objective", "lm"))
    built.module = attempt("model", **vocabulary_from_data(cfg, built.datamodule))
    built.named = {
        name: attempt(f"callbacks.{name}")
        for name, node in (cfg.get("callbacks") or {}).items()
        if node is not None  # callbacks.NAME=null switches a default callback off
    }
    built.curriculum = attempt("curriculum") if cfg.get("curriculum") else None
    built.logger = build_loggers(cfg, attempt)
    return built


def vocabulary_from_data(cfg: DictConfig, datamodule: Any) -> dict[str, int]:
    """``model.vocab_size=null``: the data's vocabulary (bytes, a tokenizer's, ``meta.json``'s),
    rounded up to a multiple of 64 as LitGPT pads it, so ``data=tokens`` of a small corpus trains
    its few hundred ids at their own width, with nothing to set by hand."""
    model = cfg.get("model") or {}
    if "vocab_size" not in model or model.get("vocab_size") is not None:
        return {}
    vocab = getattr(datamodule, "vocab_size", None)
    return {"vocab_size": -(-vocab // 64) * 64} if is_int(vocab) else {}


def build_loggers(cfg: DictConfig, attempt: Callable[[str], Any]) -> Logger | list[Logger] | bool:
    """``logger``: one logger (a node with a ``_target_``), several (``logger=many``: a node of
    named loggers, each built and checked on its own key), or none (False)."""
    node = cfg.get("logger")
    if not node:
        return False
    if "_target_" in node:
        return attempt("logger")
    built = [attempt(f"logger.{name}") for name, sub in node.items() if sub is not None]
    return [logger for logger in built if logger is not None] or False
