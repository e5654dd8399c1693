import math

import pytest
from pydantic import ValidationError

from lightning_ltd.errors import InvalidFieldsError
from lightning_ltd.ltd import LayerTokenLR, RunShape, StepLR, layer_tokens_per_step, mslg_keep, warmup_decay_lr
from lightning_ltd.ltd.lr import ScheduledLayerTokens

BASE, MIN = 1e-3, 1e-4


@pytest.mark.parametrize(
    "progress, cosine, linear",
    [
        (0, 0.0, 0.0),
        (50, BASE / 2, BASE / 2),
        (100, BASE, BASE),
        (100 + 450, MIN + (BASE - MIN) * 0.5 * (1 + math.cos(math.pi * 0.5)), MIN + (BASE - MIN) * 0.5),
        (100 + 900 * 0.25, MIN + (BASE - MIN) * 0.5 * (1 + math.cos(math.pi * 0.25)), MIN + (BASE - MIN) * 0.75),
        (1000, MIN, MIN),
        (5000, MIN, MIN),
    ],
)
def test_warmup_then_decay_closed_form(progress, cosine, linear):
    assert warmup_decay_lr(progress, BASE, 100, 1000, MIN, "cosine") == pytest.approx(cosine, abs=1e-15)
    assert warmup_decay_lr(progress, BASE, 100, 1000, MIN, "linear") == pytest.approx(linear, abs=1e-15)


def shape(enabled=True):
    return RunShape(
        global_batch=8,
        seq_len=64,
        n_layer=6,
        n_dropping=4,
        keep_at=(lambda t: mslg_keep(t, 16, 64, 10, 8)) if enabled else (lambda t: None),
    )


def test_totals_in_tokens_and_steps_become_layer_tokens():
    by_tokens = LayerTokenLR(total_tokens=1e6)
    by_tokens.resolve(ScheduledLayerTokens(shape()))
    assert by_tokens.total == 6_000_000  # full-length layer-tokens of a million tokens

    by_steps = LayerTokenLR(total_steps=20, warmup_steps=3)
    by_steps.resolve(ScheduledLayerTokens(shape()))
    expected = sum(layer_tokens_per_step(8, 64, mslg_keep(t, 16, 64, 10, 8), 6, 4) for t in range(20))
    assert by_steps.total == expected < 20 * 8 * 64 * 6
    assert by_steps.warmup == sum(layer_tokens_per_step(8, 64, mslg_keep(t, 16, 64, 10, 8), 6, 4) for t in range(3))

    baseline = LayerTokenLR(total_steps=20)
    baseline.resolve(ScheduledLayerTokens(shape(enabled=False)))
    assert baseline.total == 20 * 8 * 64 * 6


def test_effective_tokens_drive_the_same_schedule_as_layer_tokens():
    """Megatron's count: effective tokens = layer-tokens / layers. A schedule given in effective
    tokens is the layer-token schedule with totals x n_layer; the LR at each point agrees."""
    by_tokens = LayerTokenLR(total_tokens=2e5, warmup_tokens=1e4, min_lr=MIN, stop_at_budget=True)
    by_layer_tokens = LayerTokenLR(total_layer_tokens=1.2e6, warmup_layer_tokens=6e4, min_lr=MIN, stop_at_budget=True)
    for schedule in (by_tokens, by_layer_tokens):
        schedule.resolve(ScheduledLayerTokens(shape()))
    assert (by_tokens.total, by_tokens.warmup, by_tokens.budget) == (1_200_000, 60_000, 1_200_000)
    for consumed in (0, 30_000, 60_000, 500_000, 1_200_000):
        assert by_tokens.lr(consumed, BASE) == by_layer_tokens.lr(consumed, BASE)
    with pytest.raises(InvalidFieldsError, match="give at most one"):
        LayerTokenLR(total_tokens=10, warmup_tokens=1, warmup_steps=1)


def test_lr_by_layer_tokens_matches_closed_form():
    schedule = LayerTokenLR(total_layer_tokens=1e6, warmup_layer_tokens=1e5, min_lr=MIN)
    schedule.resolve(ScheduledLayerTokens(shape()))
    for consumed in (0, 25_000, 100_000, 400_000, 1_000_000, 2_000_000):
        assert schedule.lr(consumed, BASE) == warmup_decay_lr(consumed, BASE, 100_000, 1_000_000, MIN, "cosine")
    assert schedule.budget is None
    assert LayerTokenLR(total_layer_tokens=10, stop_at_budget=True).budget == 10


def test_bad_settings_named():
    with pytest.raises(InvalidFieldsError, match="give exactly one, got none"):
        LayerTokenLR()
    with pytest.raises(InvalidFieldsError, match=r"give exactly one, got \['total_layer_tokens', 'total_steps'\]"):
        LayerTokenLR(total_layer_tokens=5, total_steps=5)
    with pytest.raises(InvalidFieldsError, match="warmup_layer_tokens=50 must be <= total_layer_tokens=10"):
        LayerTokenLR(total_layer_tokens=10, warmup_layer_tokens=50)
    with pytest.raises(ValidationError, match=r"decay\n  Input should be 'cosine', 'linear' or 'constant'"):
        StepLR(total_steps=10, decay="step")
    with pytest.raises(ValidationError, match="total_tokens"):
        LayerTokenLR(total_tokens=-1.0)
    mixed = LayerTokenLR(total_tokens=100, warmup_steps=5)
    with pytest.raises(
        InvalidFieldsError, match=r"lr.warmup_steps=5 is longer than lr.total_tokens=100: [\d,]+ against"
    ):
        mixed.resolve(ScheduledLayerTokens(shape()))
    with pytest.raises(ValidationError, match=r"total_layer_tokens\n  Input should be greater than or equal to 1"):
        LayerTokenLR(total_layer_tokens=0)  # a budget of nothing


def test_step_lr_is_the_same_curve_in_steps():
    schedule = StepLR(total_steps=100, warmup_steps=10, decay="linear", min_lr=MIN)
    assert [schedule.lr(t, BASE) for t in (0, 5, 10, 55, 100)] == pytest.approx(
        [0, BASE / 2, BASE, MIN + (BASE - MIN) / 2, MIN]
    )


def test_certain_problems_refuse_only_what_resolve_would_refuse():
    """Judged at start from per-step bounds (fewest kept tokens, none dropped): every refusal is
    one that ``resolve`` makes for the real schedule, and the plain mistake is caught."""
    low, high = layer_tokens_per_step(8, 64, 16, 6, 4), layer_tokens_per_step(8, 64, None, 6, 4)
    refused = 0
    for warmup in ({"warmup_steps": s} for s in (0, 1, 3, 9)):
        for total in [{"total_layer_tokens": n} for n in (1, low, 2 * low, 5 * high)] + [{"total_tokens": 1000}]:
            schedule = LayerTokenLR(**warmup, **total)
            problems = schedule.certain_problems((low, high), n_layer=6)
            if problems:
                refused += 1
                with pytest.raises(InvalidFieldsError, match="is longer than"):
                    LayerTokenLR(**warmup, **total).resolve(ScheduledLayerTokens(shape()))
    assert refused >= 4
    assert LayerTokenLR(total_layer_tokens=1, warmup_steps=1).certain_problems((low, high), 6) == [
        f"lr.warmup_steps=1 is longer than lr.total_layer_tokens=1: at least {low:,} against at most 1 "
        "layer-tokens in this run"
    ]
    assert LayerTokenLR(total_steps=5, warmup_tokens=10**9).certain_problems((low, high), 6)  # tokens > any 5 steps
    assert not LayerTokenLR(total_steps=5, warmup_steps=9).certain_problems((low, high), 6)  # capped, as resolve does
