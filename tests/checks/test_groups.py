"""Each config group builds its own kind of object, from a ``_target_`` that imports: otherwise
one line naming the key, at start."""

import re

import pytest
from omegaconf import OmegaConf

from lightning_ltd.callbacks import RunSummary
from lightning_ltd.checks.groups import KINDS, instantiate_group, kind_problem
from lightning_ltd.errors import ConfigError
from lightning_ltd.ltd import LayerTokenLR, StepLR


def needs_a_missing_package() -> None:
    """A constructor whose optional dependency is not installed (as ``trainer=deepspeed`` is)."""
    import no_such_package_here  # noqa: F401


def built(key: str, target: str):
    cfg = OmegaConf.create({})
    OmegaConf.update(cfg, key, {"_target_": target}, force_add=True)
    return instantiate_group(cfg, key)


@pytest.mark.parametrize("key", [*KINDS, "lr", "callbacks.extra"])
def test_an_object_of_another_kind_is_named_with_the_kind_the_group_needs(key):
    with pytest.raises(ConfigError, match=rf"^{key}\._target_ built a builtins\.dict, not an? ") as err:
        built(key, "builtins.dict")
    assert "\n" not in str(err.value)


def test_the_right_kinds_pass():
    assert kind_problem("callbacks.summary", RunSummary()) is None
    assert kind_problem("lr", LayerTokenLR(total_layer_tokens=100)) is None
    assert kind_problem("lr", StepLR(total_steps=10)) is None
    assert kind_problem("paths", {"anything": 1}) is None  # no kind of its own


@pytest.mark.parametrize(
    "target, reason",
    [
        ("no.such.Callback", "No module named 'no'"),
        ("lightning_ltd.callbacks.Nope", "lightning_ltd.callbacks has no 'Nope'"),
        ("lightning_ltd.nope.Thing", "No module named 'lightning_ltd.nope'"),
    ],
)
def test_a_target_that_does_not_import_is_one_line(target, reason):
    with pytest.raises(ConfigError, match=rf"^callbacks\.extra\._target_='{target}' cannot be imported: ") as err:
        built("callbacks.extra", target)
    assert reason in str(err.value) and "\n" not in str(err.value)


def test_a_package_missing_inside_the_constructor_is_named_as_missing():
    with pytest.raises(ConfigError, match=r"^trainer: No module named 'no_such_package_here' \(a package it needs"):
        built("trainer", f"{__name__}.needs_a_missing_package")


@pytest.mark.parametrize(
    "nested, named",
    [
        ({"profiler": {"_target_": "no.such.Profiler"}}, "trainer.profiler._target_='no.such.Profiler'"),
        ({"plugins": [{"_target_": "builtins.dict"}, {"_target_": "lightning_ltd.Nope"}]}, "trainer.plugins[1]._tar"),
    ],
)
def test_a_nested_target_that_does_not_import_is_named_by_its_own_key(nested, named):
    cfg = OmegaConf.create({"trainer": {"_target_": "lightning.pytorch.Trainer", **nested}})
    with pytest.raises(ConfigError, match=re.escape(named)):
        instantiate_group(cfg, "trainer")
