"""Every config key is checked against the annotation of the constructor it feeds (``schema.py``)."""

import types
import typing
from typing import Any, Literal

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from lightning_ltd.checks.schema import HYDRA_KEYS, accepts, describe
from lightning_ltd.checks.settings import RunSettings
from lightning_ltd.checks.targets import constructor_hints, type_problems
from lightning_ltd.cli import ConfigError, build
from lightning_ltd.ranges import PositiveInt
from tests.conftest import CONF_DIR


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.bias=maybe", "model.bias='maybe' must be true or false"),
        ("ltd.enabled=maybe", "ltd.enabled='maybe' must be true or false"),
        ("ltd.step_seeding=abc", "ltd.step_seeding='abc' must be true or false"),
        ("lr.min_lr=abc", "lr.min_lr='abc' must be a number"),
        ("model.dropout=abc", "model.dropout='abc' must be a number"),
    ],
)
def test_values_of_the_wrong_type_are_one_line_naming_the_key(train_config, override, message):
    """These were accepted silently, or failed with "'<' not supported between 'str' and 'int'"."""
    with pytest.raises(ConfigError) as err:
        build(train_config(override))
    assert message in str(err.value) and "\n" not in str(err.value)


def group_nodes():
    """Every option file of every config group that names a ``_target_`` (callbacks: each entry)."""
    for path in sorted(CONF_DIR.glob("*/*.yaml")):
        node = OmegaConf.load(path)
        group = path.parent.name
        if "_target_" in node:
            yield f"{group}/{path.stem}", group, node
        elif group == "callbacks":
            for name, entry in node.items():
                if OmegaConf.is_dict(entry) and "_target_" in entry:
                    yield f"callbacks/{path.stem}.{name}", f"callbacks.{name}", entry


WRONG = {bool: "maybe", int: "abc", float: "abc", str: 12}


def plain_type(hint):
    """``Annotated[int, Bounds(1)]`` -> ``int``, inside unions too."""
    if typing.get_origin(hint) is typing.Annotated:
        return typing.get_args(hint)[0]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.Union[tuple(plain_type(a) for a in typing.get_args(hint))]  # noqa: UP007
    return hint


def wrong_value(hint):
    """A value the hint excludes, when it allows one plain type (or a set of literals) besides None."""
    hint = plain_type(hint)
    if typing.get_origin(hint) is typing.Literal:
        return "no-such-option"
    members = [a for a in typing.get_args(hint) if a is not type(None)] if typing.get_args(hint) else [hint]
    if len(members) != 1:
        return None
    return "no-such-option" if typing.get_origin(members[0]) is typing.Literal else WRONG.get(members[0])


@pytest.mark.parametrize("name, key, node", list(group_nodes()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_typed_key_of_every_group_refuses_a_wrong_type(name, key, node):
    hints = constructor_hints(str(node._target_))
    checked = 0
    for field in node:
        wrong = wrong_value(hints.get(str(field)))
        if wrong is None or str(field).startswith("_"):
            continue
        bad = node.copy()
        bad[field] = wrong
        problems = type_problems(bad, key)
        assert problems and problems[0].startswith(f"{key}.{field}="), (field, problems)
        checked += 1
    assert checked, f"{name}: no key with a plain annotation"  # the sweep reached the group


def test_the_shipped_configs_pass_their_own_schema(train_config):
    cfg = train_config(tiny=False)
    for key in ("model", "data", "ltd", "lr", "trainer", "logger"):
        assert type_problems(cfg[key], key) == [], key


def test_booleans_are_only_booleans_and_numbers_never_booleans():
    assert accepts(bool, True) and not accepts(bool, "true") and not accepts(bool, 1)
    assert not accepts(int, True) and accepts(int, 3) and accepts(int, 3.0e11) and not accepts(int, 2.5)
    assert accepts(float, 3) and not accepts(float, False) and not accepts(float, "0.1")
    assert accepts(int | None, None) and accepts(list[int], [1, 2]) and not accepts(list[int], [1, "a"])
    assert accepts(tuple[float, ...], (0.9, 0.95)) and not accepts(typing.Sequence[float], "ab")


def key_coverage(node: Any, key: str = "", own: dict[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """(keys a schema covers, keys none covers) under ``node``, the schema-coverage measure: a
    key of a node with a ``_target_`` needs an annotation of that constructor; ``own`` annotates
    the keys of ``node`` itself (the run's top level). Nested groups are walked, not counted."""
    covered: list[str] = []
    uncovered: list[str] = []
    if isinstance(node, ListConfig):
        for i, item in enumerate(node):
            inner = key_coverage(item, f"{key}[{i}]")
            covered, uncovered = covered + inner[0], uncovered + inner[1]
        return covered, uncovered
    if not isinstance(node, DictConfig):
        return covered, uncovered
    hints = constructor_hints(str(node._target_)) if "_target_" in node else own or {}
    for name in node:
        full, child = f"{key}.{name}" if key else str(name), node._get_node(name)
        nested = isinstance(child, DictConfig | ListConfig)
        if name in HYDRA_KEYS:
            continue
        if (
            nested
            and (name not in hints or isinstance(child, ListConfig))
            and ("_target_" in child or "_target_" not in node or isinstance(child, ListConfig))
        ):
            inner = key_coverage(child, full)
            covered, uncovered = covered + inner[0], uncovered + inner[1]
            if name not in hints or not isinstance(child, ListConfig):
                continue
        (covered if name in hints else uncovered).append(full)
    return covered, uncovered


def compositions():
    """The default run, every experiment, and every option of every group on the defaults."""
    yield []
    for path in sorted(CONF_DIR.glob("*/*.yaml")):
        if path.parent.name not in ("hydra", "callbacks"):
            yield [f"{path.parent.name}={path.stem}"]


@pytest.mark.slow  # composes 39 configurations (about 5 s)
def test_every_key_of_every_composition_is_covered_by_a_schema():
    """The coverage measure: each key reaches an annotation (a constructor's, an overlay's, or
    ``RunSettings``), so a wrong type or range is caught for every key, not a listed few."""
    from hydra import compose, initialize_config_module

    own = typing.get_type_hints(RunSettings, include_extras=True)
    every, missing = set(), set()
    with initialize_config_module("lightning_ltd.conf", version_base="1.3"):
        for overrides in compositions():
            covered, uncovered = key_coverage(compose("train", overrides), own=own)
            every |= set(covered) | set(uncovered)
            missing |= set(uncovered)
    assert not missing and len(every) > 90  # distinct keys over all compositions


def test_coverage_finds_a_key_no_constructor_takes():
    node = OmegaConf.create({"ltd": {"_target_": "lightning_ltd.callbacks.RandomLTDScheduler", "min_kep": 3}})
    assert key_coverage(node) == ([], ["ltd.min_kep"])


def test_checked_applies_the_schema_to_python_calls_with_ranges():
    from lightning_ltd.callbacks import NonFiniteLossGuard, RandomLTDScheduler
    from lightning_ltd.errors import InvalidFieldsError
    from lightning_ltd.modules import GPTModule

    with pytest.raises(InvalidFieldsError) as err:
        GPTModule(lr=0, betas=(0.9, 1.0), dropout=-0.1, position="alibi", n_layer=2.5)
    assert err.value.problems == [
        "n_layer=2.5 must be a positive integer",
        "dropout=-0.1 must be a number in [0, 1)",
        "position='alibi' must be one of learned, rotary",
        "lr=0 must be a number > 0",
        "betas=(0.9, 1.0) must be two numbers in [0, 1)",
    ]
    with pytest.raises(InvalidFieldsError, match=r"^skip_steps=-1 must be an integer >= 0$"):
        NonFiniteLossGuard(skip_steps=-1)
    assert RandomLTDScheduler(min_keep=8, max_keep=8).min_keep == 8  # in range: nothing raised
    assert GPTModule(n_layer=3, ltd_layers=range(1, 2)).model.config.ltd_layers == [1]  # any sequence


def test_the_trainer_overlay_narrows_lightnings_annotations(train_config):
    for override, message in [
        ("trainer.max_epochs=abc", "trainer.max_epochs='abc' must be a positive integer, or -1, or null"),
        ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch=0 must be a positive integer"),
        ("seed=-1", "seed=-1 must be an integer in [0, 4294967295]"),
        ("seed=99999999999", "seed=99999999999 must be an integer in [0, 4294967295]"),
        ("validate_before_fit=maybe", "validate_before_fit='maybe' must be true or false"),
    ]:
        with pytest.raises(ConfigError) as err:
            build(train_config(override))
        assert message in str(err.value), override


def test_a_union_of_literals_reads_as_one_choice_without_repeats():
    """Lightning's precision is ``Literal[64, 32, 16] | Literal["64", "32", "16", "bf16"] | ...``."""
    hint = Literal[64, 32] | Literal["64", "32", "bf16"] | None
    assert describe(hint) == "null or one of 64, 32, bf16"
    assert describe(int | Literal["auto"] | Literal["all"]) == "an integer, or one of auto, all"


def test_an_integral_float_reaches_an_integer_argument_as_an_int(train_config):
    """``ltd.ramp_steps=1e5`` on a command line is a float; the code counts with it (``range``)."""
    from lightning_ltd.callbacks import RandomLTDScheduler
    from lightning_ltd.checks.schema import as_declared

    assert RandomLTDScheduler(ramp_steps=1e5, min_keep=8.0).ramp_steps == 100000
    assert type(RandomLTDScheduler(ramp_steps=1e5).ramp_steps) is int
    assert as_declared(float, 2.0) == 2.0 and type(as_declared(float, 2.0)) is float
    assert type(as_declared(int | float, 2.0)) is float  # a float is taken as it is
    assert type(as_declared(int | None, 3.0)) is int and as_declared(int, 2.5) == 2.5  # 2.5: the check's to refuse
    _, _, trainer = build(train_config("ltd.ramp_steps=1e12", "trainer.max_steps=4e0"))
    scheduler = next(c for c in trainer.callbacks if isinstance(c, RandomLTDScheduler))
    assert scheduler.ramp_steps == 10**12 and type(trainer.max_steps) is int and trainer.max_steps == 4


@pytest.mark.parametrize(
    ("hint", "good", "bad"),
    [
        ("PositiveInt", [1, 3.0e11, 2**40], [0, -1, True, "3", 2.5, float("inf"), None]),
        ("Fraction", [0, 0.0, 0.5], [1, 1.0, -0.1, float("nan"), True, "0.1"]),
        ("OpenFraction", [0.15], [0, 1, float("nan")]),
        ("Seed", [0, 2**32 - 1, 7.0], [-1, 2**32, False]),
        ("NonNegativeFloat", [0, 2.5], [-1e-9, float("inf"), float("nan")]),
    ],
)
def test_declared_ranges_are_checked_by_pydantic_alike_from_python_and_from_config(hint, good, bad):
    """The same declaration refuses the same values in a config node (``accepts``) and in a
    call of the method's own constructors (pydantic's ``validate_call``, ``LayerTokenLR``)."""
    from pydantic import TypeAdapter, ValidationError

    from lightning_ltd import ranges

    declared = getattr(ranges, hint)
    assert [v for v in good if not accepts(declared, v)] == []
    assert [v for v in bad if accepts(declared, v)] == []
    strict = TypeAdapter(declared)
    for value in bad:
        with pytest.raises(ValidationError):
            strict.validate_python(value, strict=True)


def test_the_methods_own_constructors_take_whole_floats_as_counts_and_refuse_booleans():
    from pydantic import ValidationError

    from lightning_ltd.ltd import LayerTokenLR

    assert LayerTokenLR(total_tokens=3.0e11).total_tokens == 300_000_000_000
    assert isinstance(LayerTokenLR(total_tokens=1e6, warmup_tokens=1e3).warmup_tokens, int)
    for bad in ({"total_tokens": True}, {"total_tokens": "1000"}, {"total_tokens": 1e6, "min_lr": float("nan")}):
        with pytest.raises(ValidationError):
            LayerTokenLR(**bad)


def bare_numbers(hint) -> bool:
    """Whether an annotation admits a bare ``int`` or ``float``: a number without a declared range."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(bare_numbers(member) for member in typing.get_args(hint))
    return hint in (int, float)


@pytest.mark.slow  # composes 39 configurations (about 5 s)
def test_every_numeric_key_of_our_groups_declares_its_range():
    """A key added to one of our constructors as a bare ``int`` or ``float`` fails here: every
    number a user sets has its range in its annotation (``PositiveInt``, ``Fraction``, ...)."""
    from hydra import compose, initialize_config_module

    unbounded, seen = set(), 0

    def walk(node, prefix):
        nonlocal seen
        if not isinstance(node, DictConfig):
            return
        target = node.get("_target_")
        if isinstance(target, str) and target.startswith("lightning_ltd."):
            hints = constructor_hints(target)
            for key in node:
                seen += str(key) in hints
                if str(key) in hints and bare_numbers(hints[str(key)]):
                    unbounded.add(f"{prefix}{key}")
        for key in node:
            walk(node._get_node(key), f"{prefix}{key}.")

    with initialize_config_module("lightning_ltd.conf", version_base="1.3"):
        for overrides in compositions():
            walk(compose("train", overrides), "")
    assert unbounded == set() and seen > 500
    assert bare_numbers(int | None) and not bare_numbers(PositiveInt | None)
