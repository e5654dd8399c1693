import pytest

from lightning_ltd.ltd import (
    default_dropping_layers,
    layer_tokens_per_step,
    mslg_keep,
    schedule_saving,
    validate_dropping_layers,
)


def test_paper_gpt_recipe_points():
    def r(t):
        return mslg_keep(t, 128, 2048, 200_000, 16)

    assert (r(0), r(100_000), r(200_000)) == (128, 1088, 2048)
    assert r(300_000) == 2048


def test_mslg_matches_formula_and_is_monotonic():
    lo, hi, ramp, gran = 32, 197, 3910, 8
    values = [mslg_keep(t, lo, hi, ramp, gran) for t in range(0, ramp + 10)]
    for t, value in enumerate(values[:ramp]):
        v = lo + (hi - lo) * t // ramp  # floor of the exact rational
        assert value == min(hi, v - v % gran)
        assert value % gran == 0
    assert values == sorted(values)
    assert values[ramp] == 197  # the maximum is reached even though 197 % 8 != 0


def test_mslg_never_rounds_to_zero_and_validates():
    assert mslg_keep(0, 3, 64, 10, 8) == 8
    with pytest.raises(ValueError):
        mslg_keep(0, 10, 5, 10, 1)


def test_layer_tokens_and_saving():
    # GPT-3 1.3B: 24 layers, 22 dropping, keep 128 of 2048
    consumed = layer_tokens_per_step(512, 2048, 128, 24, 22)
    assert consumed == 512 * (128 * 22 + 2048 * 2)
    assert layer_tokens_per_step(2, 10, None, 4, 2) == 80
    assert layer_tokens_per_step(2, 10, 50, 4, 2) == 80  # keep capped at the sequence length
    assert schedule_saving(consumed, 512 * 2048 * 24) == pytest.approx(1 - (128 * 22 + 4096) / (2048 * 24))


def test_default_and_validated_layers():
    assert default_dropping_layers(12) == list(range(1, 11))
    assert validate_dropping_layers([3, 1], 4) == [1, 3]
    with pytest.raises(ValueError, match="out of range"):
        validate_dropping_layers([4], 4)
    with pytest.raises(ValueError, match="repeat"):
        validate_dropping_layers([1, 1], 4)
