"""Learning-rate schedules: by consumed layer-tokens (the paper's LayerToken LR) or by steps.

Both are plain objects with ``lr(progress, base_lr)``; the schedule callback feeds them the
progress (consumed layer-tokens, or optimizer steps) and writes the result into the optimizer.
Totals given as tokens or steps are turned into layer-tokens once the run's shape is known
(``resolve``), because only then are the global batch and sequence length known.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from lightning_ltd.errors import SettingWarning, int_problems, raise_if
from lightning_ltd.ltd.schedule import DECAYS, layer_tokens_per_step, warmup_decay_lr


@dataclass(frozen=True)
class RunShape:
    """What one optimizer step looks like: rows over all ranks and micro-batches, and layers.

    ``seq_len`` is the nominal row width (the data's block size), so layer-token totals and
    progress are the same on every rank and for every padded width, with no communication.
    """

    global_batch: int
    seq_len: int
    n_layer: int
    n_dropping: int
    keep_at: Callable[[int], int | None]

    def step_layer_tokens(self, step: int) -> int:
        """Layer-tokens of optimizer step ``step`` under this run's kept-length schedule."""
        return layer_tokens_per_step(self.global_batch, self.seq_len, self.keep_at(step), self.n_layer, self.n_dropping)

    def layer_tokens_of_steps(self, steps: int) -> int:
        """Layer-tokens the first ``steps`` steps consume under this run's kept-length schedule."""
        return ScheduledLayerTokens(self).before(steps)


class ScheduledLayerTokens:
    """Layer-tokens the schedule consumes before a step, kept as a running sum: O(1) per step,
    O(steps) after a jump (a resume)."""

    def __init__(self, shape: RunShape) -> None:
        self.shape = shape
        self._step = 0
        self._tokens = 0

    def before(self, step: int) -> int:
        if step < self._step:
            self._step, self._tokens = 0, 0
        while self._step < step:
            self._tokens += self.shape.step_layer_tokens(self._step)
            self._step += 1
        return self._tokens


def _count(value: float | int | None) -> int | None:
    """YAML writes big counts as floats (``3.0e11``): accept those that are whole numbers."""
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value  # type: ignore[return-value]


def capped_warmup(warmup_steps: int, total_steps: int) -> int:
    """A warmup longer than the run (``trainer.max_steps=20`` with the default 50-step warmup) is
    cut to the run, with one warning line, so a short run just works."""
    if warmup_steps <= total_steps:
        return warmup_steps
    warnings.warn(
        f"lr.warmup_steps={warmup_steps} is longer than the run (lr.total_steps={total_steps}): "
        f"warming up over all {total_steps} steps",
        SettingWarning,
        stacklevel=3,
    )
    return total_steps


def _common_problems(decay: str, min_lr: float) -> list[str]:
    problems = [] if decay in DECAYS else [f"decay={decay!r} must be one of {DECAYS}"]
    if min_lr < 0:
        problems.append(f"min_lr={min_lr!r} must be >= 0")
    return problems


class LayerTokenLR:
    """Warmup and decay driven by consumed layer-tokens (random-LTD paper, section 3.3).

    Give the end of the decay as exactly one of ``total_layer_tokens``; ``total_tokens``
    (*effective* tokens, ``tokens * n_layer`` layer-tokens: Megatron-DeepSpeed's token count
    under random-LTD, which is the data tokens of a run without dropping, so ``300e9`` is the
    GPT-3 baseline's budget); or ``total_steps`` (what this run consumes in that many steps under
    its own kept-length schedule). Likewise the warmup as ``warmup_layer_tokens``,
    ``warmup_tokens`` (effective) or ``warmup_steps`` (default none). With ``stop_at_budget``
    training ends once the total is consumed.
    """

    unit = "layer_tokens"

    def __init__(
        self,
        total_layer_tokens: float | None = None,
        total_tokens: float | None = None,
        total_steps: int | None = None,
        warmup_layer_tokens: float | None = None,
        warmup_steps: int | None = None,
        decay: str = "cosine",
        min_lr: float = 0.0,
        stop_at_budget: bool = False,
        warmup_tokens: float | None = None,
    ) -> None:
        self.total_layer_tokens = _count(total_layer_tokens)
        self.total_tokens = _count(total_tokens)
        self.total_steps = _count(total_steps)
        self.warmup_layer_tokens = _count(warmup_layer_tokens)
        self.warmup_tokens = _count(warmup_tokens)
        self.warmup_steps = _count(warmup_steps)
        totals = {
            "total_layer_tokens": self.total_layer_tokens,
            "total_tokens": self.total_tokens,
            "total_steps": self.total_steps,
        }
        warmups = {
            "warmup_layer_tokens": self.warmup_layer_tokens,
            "warmup_tokens": self.warmup_tokens,
            "warmup_steps": self.warmup_steps,
        }
        problems = int_problems(0, **totals, **warmups) + _common_problems(decay, min_lr)
        given = [name for name, value in totals.items() if value is not None]
        if len(given) != 1:
            problems.append(f"{'/'.join(totals)}: give exactly one, got {given or 'none'}")
        if sum(value is not None for value in warmups.values()) > 1:
            problems.append(f"{'/'.join(warmups)}: give at most one")
        warmup, total = self.warmup_layer_tokens, self.total_layer_tokens
        if not problems and (warmup or 0) > (total or float("inf")):
            problems.append(f"warmup_layer_tokens={warmup} must be <= total_layer_tokens={total}")
        raise_if(problems)
        if self.warmup_steps is not None and self.total_steps is not None:
            self.warmup_steps = capped_warmup(self.warmup_steps, self.total_steps)
        self.decay = decay
        self.min_lr = min_lr
        self.stop_at_budget = stop_at_budget
        self.total: int | None = self.total_layer_tokens
        self.warmup: int = self.warmup_layer_tokens or 0
        self.resolved = False

    def resolve(self, shape: RunShape) -> None:
        """Turn totals given in tokens or steps into layer-tokens for this run."""
        if self.total_tokens is not None:
            self.total = self.total_tokens * shape.n_layer
        elif self.total_steps is not None:
            self.total = shape.layer_tokens_of_steps(self.total_steps)
        if self.warmup_steps is not None:
            self.warmup = shape.layer_tokens_of_steps(self.warmup_steps)
        elif self.warmup_tokens is not None:
            self.warmup = self.warmup_tokens * shape.n_layer
        assert self.total is not None
        if self.warmup > self.total:
            raise_if([f"warmup ({self.warmup:,} layer-tokens) must not exceed the total ({self.total:,})"])
        self.resolved = True

    def lr(self, progress: float, base_lr: float) -> float:
        """The learning rate at ``progress`` (this schedule's unit) for a peak of ``base_lr``."""
        assert self.resolved and self.total is not None, "call resolve() first"
        return warmup_decay_lr(progress, base_lr, self.warmup, self.total, self.min_lr, self.decay)

    @property
    def budget(self) -> int | None:
        """Layer-tokens after which training stops (None: no stop)."""
        return self.total if self.stop_at_budget else None


class StepLR:
    """The usual step-based warmup and decay, for comparison with the LayerToken schedule."""

    unit = "steps"
    budget = None

    def __init__(self, total_steps: int, warmup_steps: int = 0, decay: str = "cosine", min_lr: float = 0.0) -> None:
        problems = int_problems(0, total_steps=total_steps, warmup_steps=warmup_steps) + _common_problems(decay, min_lr)
        raise_if(problems)
        self.total_steps = total_steps
        # a constant LR has no end to fit the warmup into (lr=constant leaves total_steps at 0)
        self.warmup_steps = warmup_steps if decay == "constant" else capped_warmup(warmup_steps, total_steps)
        self.decay = decay
        self.min_lr = min_lr

    def resolve(self, shape: RunShape) -> None:
        """Nothing to resolve: steps are steps."""

    def lr(self, progress: float, base_lr: float) -> float:
        """The learning rate at ``progress`` (this schedule's unit) for a peak of ``base_lr``."""
        return warmup_decay_lr(progress, base_lr, self.warmup_steps, self.total_steps, self.min_lr, self.decay)
