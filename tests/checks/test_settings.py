"""The overlays of ``lightning_ltd.checks.settings`` cover every numeric argument of every class a
config may name, refuse what Lightning would misuse, and accept every value Lightning takes."""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from typing import Annotated, Any

import lightning as L
import pytest
from omegaconf import OmegaConf

from lightning_ltd.checks.targets import constructor_hints, type_problems
from tests.conftest import CONF_DIR

LIGHTNING_CALLBACKS = [
    "lightning.pytorch.callbacks.ModelCheckpoint",
    "lightning.pytorch.callbacks.ModelSummary",
    "lightning.pytorch.callbacks.EarlyStopping",
    "lightning.pytorch.callbacks.LearningRateMonitor",
    "lightning.pytorch.callbacks.TQDMProgressBar",
]
"""Callbacks a user adds with ``+callbacks.NAME={_target_: ...}``, beside the shipped ones."""

ANY_NUMBER = {("lightning.pytorch.loggers.CSVLogger", "version")}
"""Arguments where every number means something: a logger's version is a folder name."""


def configured_targets() -> set[str]:
    """Every class a shipped config names, at any depth."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("_target_"), str):
                found.add(node["_target_"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in CONF_DIR.glob("**/*.yaml"):
        walk(OmegaConf.to_container(OmegaConf.load(path)))
    return found


def unbounded_number(hint: Any) -> bool:
    """An ``int`` or ``float`` without ``Bounds`` anywhere in the annotation."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        return False
    if origin in (typing.Union, types.UnionType):
        return any(unbounded_number(member) for member in typing.get_args(hint))
    return hint in (int, float)


def test_every_numeric_argument_of_every_configurable_class_has_a_range():
    """The class, not a list of samples: a new Lightning argument, or a new class in a config,
    fails here until its range is written down."""
    targets = configured_targets() | set(LIGHTNING_CALLBACKS)
    assert "lightning.pytorch.Trainer" in targets and len(targets) > 20
    open_ended = [
        f"{target}.{name}"
        for target in sorted(targets)
        for name, hint in constructor_hints(target).items()
        if unbounded_number(hint) and (target, name) not in ANY_NUMBER
    ]
    assert open_ended == []


@pytest.mark.parametrize(
    "target, key, value, message",
    [
        ("lightning_ltd.callbacks.FinalCheckpoint", "save_top_k", -2, "must be an integer >= -1"),
        ("lightning_ltd.callbacks.FinalCheckpoint", "every_n_train_steps", -1, "must be an integer >= 0, or null"),
        ("lightning_ltd.callbacks.ParameterSummary", "max_depth", -2, "must be an integer >= -1"),
        ("lightning.pytorch.callbacks.EarlyStopping", "mode", "maximum", "must be one of min, max"),
    ],
)
def test_an_overlay_of_a_lightning_class_reaches_its_subclasses(target, key, value, message):
    node = OmegaConf.create({"_target_": target, key: value})
    assert type_problems(node, "callbacks.x") == [f"callbacks.x.{key}={value!r} {message}"]


VALID_TRAINER_VALUES: list[tuple[str, Any]] = [
    ("devices", 1),
    ("devices", "auto"),
    ("devices", "1"),
    ("num_nodes", 1),
    ("fast_dev_run", True),
    ("fast_dev_run", 3),
    ("min_steps", 0),
    ("min_epochs", 2),
    ("max_time", "00:01:30:00"),
    ("max_time", {"hours": 2}),
    ("val_check_interval", "00:00:10:00"),
    ("val_check_interval", 0.25),
    ("val_check_interval", 50),
    ("limit_test_batches", 0.5),
    ("limit_predict_batches", 3),
    ("overfit_batches", 0.1),
    ("overfit_batches", 2),
    ("gradient_clip_algorithm", "value"),
    ("reload_dataloaders_every_n_epochs", 2),
    ("profiler", "simple"),
    ("max_time", {"hours": 1, "minutes": 30}),
    ("max_time", {"days": 0.5}),
    ("default_root_dir", "runs/x"),
]
"""Values Lightning accepts (each builds a ``Trainer`` below): the overlay must not refuse them."""

GPU_TRAINER_VALUES: list[tuple[str, Any]] = [("devices", -1), ("devices", "0,1"), ("devices", [0, 1])]
"""Values Lightning accepts on GPUs only (a CPU takes a count): the schema must pass them."""

BAD_TRAINER_VALUES: list[tuple[str, Any, str]] = [
    ("devices", "abc", "must be a positive integer, or -1, or a string of the form auto, N or 0,1"),
    ("devices", [-1], "must be a positive integer"),
    ("num_nodes", 0, "must be a positive integer"),
    ("fast_dev_run", -1, "must be true or false, or a positive integer"),
    ("min_steps", -3, "must be an integer >= 0, or null"),
    ("min_epochs", -1, "must be an integer >= 0, or null"),
    ("max_time", "1 hour", "must be a string of the form DD:HH:MM:SS, or a mapping of weeks, days, hours,"),
    (
        "max_time",
        {"days": -1},
        "must be a string of the form DD:HH:MM:SS, or a mapping of weeks, days, hours, minutes, seconds, milliseconds, "
        "microseconds to numbers >= 0, or null",
    ),
    (
        "max_time",
        {"days": "one"},
        "must be a string of the form DD:HH:MM:SS, or a mapping of weeks, days, hours, minutes, seconds, milliseconds, "
        "microseconds to numbers >= 0, or null",
    ),
    (
        "max_time",
        {"fortnights": 1},
        "must be a string of the form DD:HH:MM:SS, or a mapping of weeks, days, hours, minutes, seconds, milliseconds, "
        "microseconds to numbers >= 0, or null",
    ),
    ("val_check_interval", "soon", "must be a positive integer"),
    ("limit_test_batches", -1, "must be an integer >= 0"),
    ("limit_predict_batches", 1.5, "must be an integer >= 0"),
    ("overfit_batches", -1, "must be an integer >= 0, or a number in [0, 1]"),
    ("gradient_clip_algorithm", "l2", "must be null or one of norm, value"),
    ("reload_dataloaders_every_n_epochs", -1, "must be an integer >= 0"),
    ("profiler", "fast", "must be one of simple, advanced, pytorch, xla"),
]


def trainer_problems(key: str, value: Any) -> list[str]:
    node = OmegaConf.create({"_target_": "lightning.pytorch.Trainer", key: value})
    return type_problems(node, "trainer")


@pytest.mark.parametrize("key, value", VALID_TRAINER_VALUES, ids=lambda v: str(v))
def test_every_value_lightning_takes_passes_the_trainer_overlay(key, value, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert trainer_problems(key, value) == []
    argument = timedelta(**value) if key == "max_time" and isinstance(value, dict) else value
    L.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, **{key: argument})


def test_device_lists_for_gpus_pass_the_trainer_overlay():
    assert [trainer_problems(key, value) for key, value in GPU_TRAINER_VALUES] == [[]] * len(GPU_TRAINER_VALUES)


@pytest.mark.parametrize("key, value, message", BAD_TRAINER_VALUES, ids=lambda v: str(v))
def test_a_value_lightning_would_misuse_is_named_with_its_range(key, value, message):
    problems = trainer_problems(key, value)
    assert len(problems) == 1 and problems[0].startswith(f"trainer.{key}={value!r} {message}"), problems
