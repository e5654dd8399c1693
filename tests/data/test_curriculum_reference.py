"""The curricula against DeepSpeed's own code, driven as its data sampler drives it: every
optimizer step, ``DeepSpeedDataSampler.get_next_global_batch`` increments its step and then asks
``CurriculumScheduler.update_difficulty`` for the difficulty of the global batch it draws; the
rarity pool is the sampler's ``get_sample_based_on_metric_percentile`` of that difficulty."""

from types import SimpleNamespace

import numpy as np
import pytest
from hydra.utils import instantiate

from lightning_ltd.data.rarity import RarityPool
from tests.conftest import compose_train

pytestmark = pytest.mark.slow  # DeepSpeed's import alone takes seconds; a million BERT steps take more


@pytest.fixture(scope="module", autouse=True)
def reference_code():
    """DeepSpeed's modules, imported when a test here runs (not when the suite is collected)."""
    pytest.importorskip("deepspeed")
    global c, ds, DeepSpeedDataSampler
    from deepspeed.runtime.data_pipeline import constants as c
    from deepspeed.runtime.data_pipeline import curriculum_scheduler as ds
    from deepspeed.runtime.data_pipeline.data_sampling.data_sampler import DeepSpeedDataSampler


AFTER = 2_000  # steps checked after the curricula end (the reference stays at its maximum)


def reference_scheduler(start: int, end: int, steps: int, degree: int, granularity: int):
    schedule = {
        c.CURRICULUM_LEARNING_SCHEDULE_TOTAL_STEP: steps,
        c.CURRICULUM_LEARNING_SCHEDULE_DIFFICULTY_STEP: granularity,
    }
    kind = c.CURRICULUM_LEARNING_SCHEDULE_FIXED_LINEAR
    if degree > 1:
        kind = c.CURRICULUM_LEARNING_SCHEDULE_FIXED_ROOT
        schedule[c.CURRICULUM_LEARNING_SCHEDULE_ROOT_DEGREE] = degree
    return ds.CurriculumScheduler(
        {
            c.CURRICULUM_LEARNING_MIN_DIFFICULTY: start,
            c.CURRICULUM_LEARNING_MAX_DIFFICULTY: end,
            c.CURRICULUM_LEARNING_SCHEDULE_TYPE: kind,
            c.CURRICULUM_LEARNING_SCHEDULE_CONFIG: schedule,
        }
    )


def as_the_sampler_applies(scheduler, optimizer_steps: int) -> list[int]:
    """The difficulty of each optimizer step's global batch (``get_next_global_batch``)."""
    # curriculum_step += 1, then update_difficulty(curriculum_step): step t asks for t + 1
    return [scheduler.update_difficulty(curriculum_step) for curriculum_step in range(1, optimizer_steps + 1)]


def recipe_curriculum(tmp_path, experiment: str):
    cfg = compose_train(tmp_path, f"experiment={experiment}", tiny=False)
    return instantiate(cfg.curriculum), cfg.model.block_size


@pytest.mark.parametrize("experiment", ["gpt3_1.3b_cl_ltd", "gpt3_1.3b_cl_ltd_150b", "bert_large_cl_ltd"])
def test_every_step_trains_at_the_length_deepspeed_applies(tmp_path, experiment):
    curriculum, block_size = recipe_curriculum(tmp_path, experiment)
    lengths = curriculum.resolve(block_size)
    degree = 1 if curriculum.schedule == "linear" else curriculum.root_degree
    steps = curriculum.steps + AFTER
    reference = reference_scheduler(lengths.min_len, lengths.max_len, curriculum.steps, degree, curriculum.granularity)
    expected = as_the_sampler_applies(reference, steps)
    differing = [t for t in range(steps) if lengths.length_at(t) != expected[t]]
    assert differing == [] and expected[0] > lengths.min_len - curriculum.granularity


def reference_pool(blocks: int, scores: np.ndarray, percent: int) -> set[int]:
    """``get_sample_based_on_metric_percentile(metric, 0, percent)`` over the data analyzer's
    index: rows of sample indices, one row per metric value, in ascending value."""
    values = np.unique(scores)
    rows = [np.flatnonzero(scores == value) for value in values]
    metrics = {"voc": {c.CURRICULUM_LEARNING_MAX_DIFFICULTY: 100}}
    config = {c.DATA_SAMPLING: {c.CURRICULUM_LEARNING: {c.CURRICULUM_LEARNING_METRICS: metrics}}}
    sampler = SimpleNamespace(
        data_1epoch_size=None, curriculum_index_to_sample={"voc": rows}, data_efficiency_config=config
    )
    return set(DeepSpeedDataSampler.get_sample_based_on_metric_percentile(sampler, "voc", 0, percent).tolist())


@pytest.mark.parametrize("experiment", ["gpt3_1.3b_cl_ltd", "gpt3_1.3b_cl_ltd_150b", "bert_large_cl_ltd"])
def test_every_step_draws_from_the_blocks_deepspeed_serves(tmp_path, experiment):
    curriculum, _ = recipe_curriculum(tmp_path, experiment)
    blocks, global_batch = 12_345, 16
    scores = np.random.default_rng(0).integers(0, 3_000, blocks).astype(np.float32)  # ties, as real scores have
    order = np.argsort(scores, kind="stable")  # lightning_ltd.data.rarity.easiest_first
    start, steps, degree = curriculum.rarity_percent, curriculum.rarity_steps, curriculum.rarity_degree
    pool = RarityPool(blocks, global_batch, start, steps, degree)
    reference = reference_scheduler(start, 100, steps, degree, 1)
    steps += AFTER
    percents = as_the_sampler_applies(reference, steps)
    assert [pool.percent_at(t) for t in range(steps)] == percents
    sizes = {t: pool(t * global_batch) for t in range(steps)}
    for percent in sorted(set(percents)):  # each pool the run meets: the same blocks, not only as many
        first = percents.index(percent)
        assert set(order[: sizes[first]].tolist()) == reference_pool(blocks, scores, percent), percent
