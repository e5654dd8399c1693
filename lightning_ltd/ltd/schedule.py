"""Kept-length schedule (MSLG) and layer-token arithmetic, as pure functions."""

from __future__ import annotations

import bisect
import functools
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal


def mslg_keep(step: int, min_keep: int, max_keep: int, ramp_steps: int, granularity: int = 1) -> int:
    """Monotonic sequence-length growth: the kept length after ``step`` optimizer steps.

    ``r(t) = min(max, v - v mod granularity)`` with ``v = floor(min + (max - min) * t / ramp)``.
    From ``t >= ramp`` on it is ``max_keep`` exactly, so a maximum that is not a multiple of
    the granularity (ViT's 197 with step 8) is still reached at the end of the ramp; it is
    never below one granule (or 1), so a tiny ``min_keep`` cannot round down to zero.
    """
    if not 1 <= min_keep <= max_keep:
        raise ValueError(f"need 1 <= min_keep ({min_keep}) <= max_keep ({max_keep})")
    if ramp_steps < 0 or granularity < 1 or step < 0:
        raise ValueError(f"need ramp_steps >= 0 ({ramp_steps}), granularity >= 1 ({granularity}), step >= 0 ({step})")
    if step >= ramp_steps:
        return max_keep
    return _on_grid(min_keep + (max_keep - min_keep) * step // ramp_steps, max_keep, granularity)


def _on_grid(value: int, max_keep: int, granularity: int) -> int:
    """``value`` rounded down to the granularity, within ``[one granule (or 1), max_keep]``."""
    return max(min(max_keep, value - value % granularity), min(granularity, max_keep), 1)


@dataclass(frozen=True)
class KeptLengthSchedule:
    """The MSLG kept length of every optimizer step of one run (None throughout when off).

    With ``buckets`` the schedule uses at most that many kept lengths: each step keeps the
    smallest of ``buckets`` lengths, evenly spaced over the MSLG grid from ``min_keep`` to
    ``max_keep``, that is at least its MSLG length (never fewer tokens than MSLG). A compiled
    model has one graph per kept length, so this bounds the compiles of any schedule; the
    layer-token count, the LR and the budget follow the bucketed lengths, the ones computed.
    """

    enabled: bool
    min_keep: int
    max_keep: int
    ramp_steps: int
    granularity: int
    buckets: int | None = None

    def mslg_keep_at(self, step: int) -> int:
        """The unbucketed MSLG kept length of optimizer step ``step``."""
        return mslg_keep(step, self.min_keep, self.max_keep, self.ramp_steps, self.granularity)

    def keep_at(self, step: int) -> int | None:
        """The kept length for optimizer step ``step`` (None when dropping is disabled)."""
        if not self.enabled:
            return None
        keep = self.mslg_keep_at(step)
        if self.buckets is None:
            return keep
        lengths = self.bucket_lengths
        return lengths[bisect.bisect_left(lengths, keep)]

    @functools.cached_property
    def mslg_keeps(self) -> list[int]:
        """Every MSLG kept length of the ramp, ascending. A ramp of at least ``max - min`` steps
        grows ``v`` by at most 1 a step, so it passes every length in between: they are found
        from the lengths, not the steps (a ramp of 1e12 steps would not finish)."""
        if self.ramp_steps > self.max_keep - self.min_keep:
            passed = range(self.min_keep, max(self.max_keep, self.min_keep + 1))  # min == max: v stays min
            clamp = functools.partial(_on_grid, max_keep=self.max_keep, granularity=self.granularity)
            return sorted({*map(clamp, passed), self.max_keep})
        return sorted({self.mslg_keep_at(t) for t in range(self.ramp_steps + 1)})

    @functools.cached_property
    def bucket_lengths(self) -> list[int]:
        """The ``buckets`` kept lengths a bucketed schedule uses: MSLG lengths evenly spaced by
        rank, the smallest and the largest included."""
        return evenly_spaced(self.mslg_keeps, self.buckets or len(self.mslg_keeps))

    def distinct_keeps(self) -> list[int | None]:
        """Every kept length the whole schedule uses, ascending (each is one compiled graph)."""
        if not self.enabled:
            return [None]
        return list(self.bucket_lengths if self.buckets is not None else self.mslg_keeps)


def evenly_spaced(values: list[int], count: int) -> list[int]:
    """``count`` of the ascending ``values``, evenly spaced by rank, the smallest and the largest
    included: the lengths a compiled run buckets a schedule into (one graph per length)."""
    if count >= len(values):
        return values
    if count == 1:
        return [values[-1]]
    return sorted({values[round(i * (len(values) - 1) / (count - 1))] for i in range(count)})


def drops(keep: int | None, seq_len: int) -> bool:
    """Whether a layer keeping ``keep`` tokens drops any of ``seq_len``: the one test of "a kept
    length of at least the sequence (or None) means the plain layer"."""
    return keep is not None and keep < seq_len


def kept_tokens(keep: int | None, seq_len: int) -> int:
    """Tokens a dropping layer processes of a ``seq_len`` row at kept length ``keep``."""
    return keep if drops(keep, seq_len) else seq_len  # type: ignore[return-value]


def default_dropping_layers(n_layer: int) -> list[int]:
    """The paper's choice: every middle layer drops; the first and the last see everything."""
    return list(range(1, n_layer - 1))


def layer_tokens_per_step(batch_size: int, seq_len: int, keep: int | None, n_layer: int, n_dropping: int) -> int:
    """Tokens processed summed over layers: ``B * (keep * n_dropping + T * (L - n_dropping))``."""
    return batch_size * (kept_tokens(keep, seq_len) * n_dropping + seq_len * (n_layer - n_dropping))


def full_layer_tokens(batch_size: int, seq_len: int, n_layer: int) -> int:
    """Layer-tokens of the same step without dropping (the baseline's cost)."""
    return batch_size * seq_len * n_layer


def schedule_saving(consumed: int, full: int) -> float:
    """``1 - consumed / full``: the layer compute the dropping schedule skipped, against the
    *same batches* at full length (not against a baseline that reads more data)."""
    return 0.0 if full == 0 else 1.0 - consumed / full


def effective_tokens(layer_tokens: float, n_layer: int) -> float:
    """Layer-tokens / layers: the tokens Megatron-DeepSpeed counts under random-LTD (for a run
    without dropping, the data tokens read)."""
    return layer_tokens / n_layer


def budget_saving(layer_tokens: float, n_layer: int, baseline_tokens: float) -> float:
    """``1 - effective tokens / baseline tokens``: the compute saved against a baseline run of
    ``baseline_tokens`` full-length tokens (the paper's 33.3 %: 200B against 300B)."""
    return 1.0 - effective_tokens(layer_tokens, n_layer) / baseline_tokens


def validate_dropping_layers(layers: Sequence[int], n_layer: int) -> list[int]:
    """Sorted, unique, middle layers (``1 .. n_layer - 2``); raises a ValueError naming the bad
    index. The first and the last layer see every token: a dropped token skipping the last one
    would reach the head (and the loss) unprocessed by it, one skipping the first would enter
    the stack as a bare embedding."""
    for index in layers:
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_layer:
            raise ValueError(f"dropping layer index {index!r} is out of range [0, {n_layer})")
        if index in (0, n_layer - 1):
            which = "first" if index == 0 else "last"
            raise ValueError(
                f"dropping layer index {index} is the {which} layer, which sees every token "
                f"(the middle layers are 1 .. {n_layer - 2})"
            )
    if len(set(layers)) != len(layers):
        raise ValueError(f"dropping layer indices repeat: {list(layers)}")
    return sorted(layers)


Decay = Literal["cosine", "linear", "constant"]
DECAYS = typing.get_args(Decay)


def warmup_decay_lr(progress: float, base_lr: float, warmup: float, total: float, min_lr: float, decay: str) -> float:
    """Linear warmup from 0 over ``warmup``, then decay to ``min_lr`` at ``total`` (and flat after).

    ``progress`` is in whatever unit the schedule runs on: consumed layer-tokens for the
    LayerToken schedule, optimizer steps for the step schedule. At ``progress = 0`` the LR is 0
    when there is a warmup (as in Hugging Face's warmup schedules).
    """
    if decay not in DECAYS:
        raise ValueError(f"decay={decay!r} must be one of {DECAYS}")
    if progress < warmup:
        return base_lr * progress / warmup
    if decay == "constant":
        return base_lr
    span = total - warmup
    fraction = 1.0 if span <= 0 else min(1.0, (progress - warmup) / span)
    if decay == "cosine":
        return min_lr + (base_lr - min_lr) * 0.5 * (1.0 + math.cos(math.pi * fraction))
    return min_lr + (base_lr - min_lr) * (1.0 - fraction)
