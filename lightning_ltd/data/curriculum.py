"""Curriculum schedules (DeepSpeed Data Efficiency, arXiv 2212.03597), as pure functions: the
difficulty grows from a start to an end value on a root-N schedule, and optimizer step ``t``
trains at the difficulty of ``t + 1``, as DeepSpeed's data sampler applies it (it increments its
step before it updates the difficulty)."""

from __future__ import annotations

import bisect
import functools
import math
from dataclasses import dataclass
from typing import Literal

from lightning_ltd.ltd.schedule import evenly_spaced

CurriculumShape = Literal["linear", "root"]


def curriculum_value(step: int, start: int, end: int, steps: int, root_degree: int = 1, granularity: int = 1) -> int:
    """DeepSpeed's ``fixed_root`` difficulty (``fixed_linear`` is ``root_degree=1``) at ``step``:
    ``d = floor(start + (end - start) * (t / steps) ** (1 / N))``, rounded down to a multiple of
    ``granularity``, within ``[start, end]``. From ``t >= steps`` on it is ``end`` exactly, so an
    end that is not on the grid is still reached; it is never below ``start`` (DeepSpeed's could
    round below a ``start`` off the grid)."""
    if not 1 <= start <= end or steps < 0 or granularity < 1 or root_degree < 1 or step < 0:
        raise ValueError(f"need 1 <= start ({start}) <= end ({end}), steps >= 0, granularity, root_degree >= 1")
    if step >= steps:
        return end
    value = math.floor(start + (end - start) * (step / steps) ** (1.0 / root_degree))
    return min(end, max(start, value - value % granularity))


def applied_value(step: int, start: int, end: int, steps: int, root_degree: int = 1, granularity: int = 1) -> int:
    """The difficulty optimizer step ``step`` trains at: ``curriculum_value`` of ``step + 1``
    (``DeepSpeedDataSampler.get_next_global_batch``: ``curriculum_step += 1``, then
    ``update_difficulty(curriculum_step)``)."""
    return curriculum_value(step + 1, start, end, steps, root_degree, granularity)


@dataclass(frozen=True)
class SeqLenSchedule:
    """The training sequence length of every optimizer step: the curriculum's truncation."""

    min_len: int
    max_len: int
    steps: int
    granularity: int = 8
    shape: CurriculumShape = "linear"
    root_degree: int = 2

    buckets: int | None = None

    def length_at(self, step: int) -> int:
        """The length of optimizer step ``step``; with ``buckets``, the smallest bucket length at
        least the curriculum's (never fewer tokens than it asks)."""
        degree = 1 if self.shape == "linear" else self.root_degree
        length = applied_value(step, self.min_len, self.max_len, self.steps, degree, self.granularity)
        if self.buckets is None:
            return length
        return self.bucket_lengths[bisect.bisect_left(self.bucket_lengths, length)]

    @functools.cached_property
    def bucket_lengths(self) -> list[int]:
        """At most ``buckets`` lengths, evenly spaced over the curriculum's grid from ``min_len``
        to ``max_len``: a compiled model has one graph per length, so this bounds its compiles
        under any curriculum (``gpt3_1.3b_cl_ltd``'s 247 lengths become 16)."""
        grid = range(self.min_len - self.min_len % self.granularity + self.granularity, self.max_len, self.granularity)
        return evenly_spaced(sorted({self.min_len, *grid, self.max_len}), self.buckets or self.max_len)

    def data_saving(self, steps: int) -> float:
        """Tokens the first ``steps`` optimizer steps did not read against the same steps at
        ``max_len`` (each step's rows are the same, so rows cancel): ``1 - sum(len_t) / (steps * max)``.
        Rows the data serves shorter than a step's length (padded MLM batches) were not cut, so
        there it is an upper bound."""
        if steps <= 0:
            return 0.0
        return 1.0 - sum(self.length_at(t) for t in range(steps)) / (steps * self.max_len)


def rarity_percent(step: int, start_percent: int, steps: int, root_degree: int = 1) -> int:
    """The whole percentile of the easiest blocks the rarity curriculum serves at optimizer
    ``step``: DeepSpeed's percentile-based difficulty, from ``start_percent`` to 100 over
    ``steps`` steps in steps of 1, as its sampler applies it."""
    return applied_value(step, start_percent, 100, steps, root_degree)
