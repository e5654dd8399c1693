import itertools

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
    assert validate_dropping_layers([2, 1], 4) == [1, 2]
    for edge, which in ((0, "first"), (3, "last")):
        with pytest.raises(ValueError, match=f"index {edge} is the {which} layer, which sees every token"):
            validate_dropping_layers([1, edge], 4)
    with pytest.raises(ValueError, match="out of range"):
        validate_dropping_layers([4], 4)
    with pytest.raises(ValueError, match="repeat"):
        validate_dropping_layers([1, 1], 4)


def test_bucketed_kept_lengths_are_few_evenly_spaced_and_never_below_mslg():
    from lightning_ltd.ltd.schedule import KeptLengthSchedule

    exact = KeptLengthSchedule(True, 128, 2048, 1000, 16)
    bucketed = KeptLengthSchedule(True, 128, 2048, 1000, 16, buckets=16)
    lengths = bucketed.distinct_keeps()
    assert len(exact.distinct_keeps()) == 121 and len(lengths) == 16
    assert lengths[0] == 128 and lengths[-1] == 2048 and all(k % 16 == 0 for k in lengths)
    gaps = {b - a for a, b in itertools.pairwise(lengths)}
    assert max(gaps) - min(gaps) <= 16  # evenly spaced on the 16-grid
    for step in range(0, 1100, 7):
        keep, mslg = bucketed.keep_at(step), exact.keep_at(step)
        assert keep in lengths and keep >= mslg  # never fewer tokens than MSLG
        assert keep == min(k for k in lengths if k >= mslg)  # the next bucket up
    assert KeptLengthSchedule(True, 8, 32, 20, 8, buckets=16).distinct_keeps() == [8, 16, 24, 32]  # few: all
    assert KeptLengthSchedule(True, 8, 32, 20, 8, buckets=1).distinct_keeps() == [32]
    assert KeptLengthSchedule(False, 8, 32, 20, 8, buckets=4).distinct_keeps() == [None]


@pytest.mark.parametrize("experiment", ["gpt3_1.3b", "gpt3_1.3b_300b"])
def test_the_compiled_1_3b_recipe_compiles_at_most_20_graphs_per_rank(tmp_path, experiment):
    """Counted from the composed recipe, not compiled: with model.compile=true its 121 MSLG
    lengths become 16 buckets, 16 training graphs (15 dropping + full length) and 1 evaluation."""
    from hydra.utils import instantiate

    from lightning_ltd.ltd.schedule import KeptLengthSchedule
    from lightning_ltd.models.compile import count_graphs
    from tests.conftest import compose_train

    cfg = compose_train(tmp_path, f"experiment={experiment}", "model.compile=true", tiny=False)
    scheduler = instantiate(cfg.ltd)
    ltd = cfg.ltd
    exact = KeptLengthSchedule(True, ltd.min_keep, ltd.max_keep, ltd.ramp_steps, ltd.granularity)
    bucketed = KeptLengthSchedule(
        True, ltd.min_keep, ltd.max_keep, ltd.ramp_steps, ltd.granularity, scheduler.compile_buckets
    )
    width = cfg.data.block_size
    assert count_graphs([width], exact.distinct_keeps()) == 122
    assert count_graphs([width], bucketed.distinct_keeps()) == 17 <= 20


def test_the_distinct_kept_lengths_are_found_without_walking_every_step():
    """Against a walk over every step of the ramp, on random settings; a 1e12-step ramp is quick."""
    import random
    import time

    from lightning_ltd.ltd.schedule import KeptLengthSchedule

    draw = random.Random(0)
    for _ in range(800):
        low = draw.randint(1, 300)
        high = draw.choice([low, low + 3, draw.randint(low, 400)])
        schedule = KeptLengthSchedule(True, low, high, draw.randint(0, 900), draw.choice([1, 3, 8, 16, 64]))
        walked = sorted({schedule.mslg_keep_at(t) for t in range(schedule.ramp_steps + 1)})
        assert schedule.mslg_keeps == walked, schedule
    started = time.perf_counter()
    assert len(KeptLengthSchedule(True, 128, 2048, 10**12, 16).mslg_keeps) == 121
    assert time.perf_counter() - started < 1.0


@pytest.mark.slow  # about 1 s: DeepSpeed's import
def test_mslg_equals_deepspeeds_own_scheduler_until_the_ramp_ends():
    """The installed reference, driven as DeepSpeed drives it (``update_seq`` every step), on the
    ViT-B/16 recipe: equal at every step of the ramp; from its end ours keeps all 197 tokens,
    DeepSpeed's holds 192 (its rounding to the granularity) until step 3,982."""
    pytest.importorskip("deepspeed")
    from deepspeed.runtime.data_pipeline import constants as c
    from deepspeed.runtime.data_pipeline.data_routing.scheduler import RandomLTDScheduler as Reference

    from lightning_ltd.ltd.schedule import KeptLengthSchedule

    schedule = {c.RANDOM_LTD_REQUIRE_STEP: 3910, c.RANDOM_LTD_INCREASE_STEP: 8}
    reference = Reference(
        {
            c.RANDOM_LTD_TOTAL_LAYER_NUM: 12,
            c.RANDOM_LTD_LAYER_NUM: 10,
            c.RANDOM_LTD_GLOBAL_BATCH_SIZE: 1,
            c.RANDOM_LTD_LAYER_TOKEN_LR_SCHEDULE: {c.RANDOM_LTD_LAYER_TOKEN_LR_ENABLED: False},
            c.RANDOM_LTD_SCHEDULER: {
                c.RANDOM_LTD_MIN_VALUE: 32,
                c.RANDOM_LTD_MAX_VALUE: 197,
                c.RANDOM_LTD_SCHEDULER_TYPE: "fixed_linear",
                c.RANDOM_LTD_SCHEDULE_CONFIG: schedule,
            },
        }
    )
    ours = KeptLengthSchedule(True, 32, 197, 3910, 8)
    theirs = []
    for step in range(4000):
        reference.update_seq(step)
        theirs.append(reference.get_current_seq())
    assert [ours.keep_at(t) for t in range(3910)] == theirs[:3910]
    assert theirs.index(197) == 3982 and next(t for t in range(4000) if ours.keep_at(t) == 197) == 3910
    assert set(theirs[3910:3982]) == {192}
