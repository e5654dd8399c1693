"""Learning-rate schedules: by consumed layer-tokens (the paper's LayerToken LR) or by steps.

``LayerTokenLR`` and ``StepLR`` are plain objects with ``lr(progress, base_lr)``: what the LR is
at a given progress. ``LayerTokenLRScheduler`` is the ``torch.optim.lr_scheduler.LRScheduler``
that applies one to an optimizer, its progress read off one counter (the scheduled
layer-tokens before the current optimizer step), so Lightning steps, logs and checkpoints it
as any scheduler. Totals given as tokens or steps are turned into layer-tokens once the run's
shape is known (``resolve``), because only then are the global batch and sequence length known.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from pydantic import ConfigDict, validate_call
from torch.optim.lr_scheduler import LRScheduler

from lightning_ltd.errors import SettingWarning, raise_if
from lightning_ltd.ltd.schedule import Decay, layer_tokens_per_step, warmup_decay_lr
from lightning_ltd.ranges import Count, NonNegativeFloat, PositiveInt

STRICT = ConfigDict(strict=True)  # pydantic checks the declared ranges: a boolean or a string is no number


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
    seq_len_at: Callable[[int], int] | None = None  # a curriculum's truncation (None: ``seq_len`` throughout)

    def step_layer_tokens(self, step: int) -> int:
        """Layer-tokens of optimizer step ``step`` under this run's kept-length schedule, at the
        curriculum's length of that step where there is one."""
        seq_len = self.seq_len if self.seq_len_at is None else min(self.seq_len, self.seq_len_at(step))
        return layer_tokens_per_step(self.global_batch, seq_len, self.keep_at(step), self.n_layer, self.n_dropping)


class ScheduledLayerTokens:
    """Layer-tokens the schedule consumes before a step, kept as a running sum: O(1) per step,
    O(steps) after a jump.

    ``anchor`` is ``(step, layer-tokens before it)`` as a checkpoint recorded them: a run resumed
    with another global batch (another number of GPUs) continues from the count it had, instead
    of re-counting every past step at the new batch, so its LR and budget go on where they were.
    Steps before the anchor are counted at this run's shape (a warmup given in steps, say).
    """

    def __init__(self, shape: RunShape, anchor: tuple[int, int] = (0, 0)) -> None:
        self.shape = shape
        self.anchor = anchor
        self._step, self._tokens = anchor

    def before(self, step: int) -> int:
        if step < self.anchor[0]:
            return sum(self.shape.step_layer_tokens(t) for t in range(step))
        if step < self._step:
            self._step, self._tokens = self.anchor
        while self._step < step:
            self._tokens += self.shape.step_layer_tokens(self._step)
            self._step += 1
        return self._tokens


class LRSchedule(Protocol):
    """What ``LayerTokenLRScheduler`` needs of a schedule (``LayerTokenLR``, ``StepLR``)."""

    unit: str  # "layer_tokens" or "steps": what ``progress`` counts
    budget: int | None  # layer-tokens after which to stop, or None

    def resolve(self, counter: ScheduledLayerTokens) -> None: ...

    def lr(self, progress: float, base_lr: float) -> float: ...


class LayerTokenLRScheduler(LRScheduler):
    """An ``LRScheduler`` whose ``last_epoch`` is the optimizer step and whose LR is
    ``schedule.lr(progress, initial_lr)``, with progress the scheduled layer-tokens before that
    step (``LayerTokenLR``) or the step itself (``StepLR``).

    The run's shape is known only at the first training batch: until ``start`` the scheduler
    leaves the LR alone. ``start`` also places it at the trainer's step, so a resumed run's LR
    is a function of the step alone (its saved state is just that step).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, schedule: LRSchedule) -> None:
        self.schedule = schedule
        self.counter: ScheduledLayerTokens | None = None
        super().__init__(optimizer)

    def start(self, counter: ScheduledLayerTokens, step: int) -> None:
        """Resolve the schedule for the run's shape and set the LR of optimizer step ``step``."""
        if self.counter is None:
            self.schedule.resolve(counter)
        self.counter = counter
        self.base_lrs = [group["initial_lr"] for group in self.optimizer.param_groups]  # a resume's saved peak
        self.last_epoch = step
        self._last_lr = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, self._last_lr, strict=True):
            group["lr"] = lr

    def get_lr(self) -> list[float]:  # type: ignore[override]
        if self.counter is None:
            return [group["lr"] for group in self.optimizer.param_groups]
        step = self.last_epoch
        progress = self.counter.before(step) if self.schedule.unit == "layer_tokens" else step
        return [self.schedule.lr(progress, base) for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        """The step only (plain data: checkpoints load with ``weights_only=True``)."""
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.last_epoch = int(state_dict["last_epoch"])


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

    @validate_call(config=STRICT)
    def __init__(
        self,
        total_layer_tokens: PositiveInt | None = None,
        total_tokens: PositiveInt | None = None,
        total_steps: PositiveInt | None = None,
        warmup_layer_tokens: Count | None = None,
        warmup_steps: Count | None = None,
        decay: Decay = "cosine",
        min_lr: NonNegativeFloat = 0.0,
        stop_at_budget: bool = False,
        warmup_tokens: Count | None = None,
    ) -> None:
        self.total_layer_tokens = total_layer_tokens
        self.total_tokens = total_tokens
        self.total_steps = total_steps
        self.warmup_layer_tokens = warmup_layer_tokens
        self.warmup_tokens = warmup_tokens
        self.warmup_steps = warmup_steps
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
        problems = []
        given = [name for name, value in totals.items() if value is not None]
        if len(given) != 1:
            problems.append(f"{'/'.join(totals)}: give exactly one, got {given or 'none'}")
        if sum(value is not None for value in warmups.values()) > 1:
            problems.append(f"{'/'.join(warmups)}: give at most one")
        warmup, total = self.warmup_layer_tokens, self.total_layer_tokens
        if not problems and warmup is not None and total is not None and warmup > total:
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

    def resolve(self, counter: ScheduledLayerTokens) -> None:
        """Turn totals given in tokens or steps into layer-tokens for this run (steps: what its
        counter counts before them)."""
        shape = counter.shape
        if self.total_tokens is not None:
            self.total = self.total_tokens * shape.n_layer
        elif self.total_steps is not None:
            self.total = counter.before(self.total_steps)
        if self.warmup_steps is not None:
            self.warmup = counter.before(self.warmup_steps)
        elif self.warmup_tokens is not None:
            self.warmup = self.warmup_tokens * shape.n_layer
        assert self.total is not None
        if self.warmup > self.total:
            raise_if([self._warmup_too_long(f"{self.warmup:,}", f"{self.total:,}")])
        self.resolved = True

    def certain_problems(self, step_layer_tokens: tuple[int, int], n_layer: int) -> list[str]:
        """What ``resolve`` would refuse for any run whose steps each consume between the two
        bounds of layer-tokens: judged before the run starts, where its exact shape (the kept
        lengths, the padded widths) is not known yet."""
        low, high = step_layer_tokens
        warmup_low = self._in_layer_tokens("warmup", low, n_layer)
        total_high = self._in_layer_tokens("total", high, n_layer)
        if warmup_low is None or total_high is None or warmup_low <= total_high:
            return []
        return [self._warmup_too_long(f"at least {warmup_low:,}", f"at most {total_high:,}")]

    def _in_layer_tokens(self, kind: str, per_step: int, n_layer: int) -> int | None:
        """The ``warmup`` or ``total`` as given, in layer-tokens at ``per_step`` (None: not given)."""
        given = self._given(kind)
        if (layer_tokens := given[f"{kind}_layer_tokens"]) is not None:
            return layer_tokens
        if (tokens := given[f"{kind}_tokens"]) is not None:
            return tokens * n_layer
        steps = given[f"{kind}_steps"]
        return None if steps is None else steps * per_step

    def _warmup_too_long(self, warmup_layer_tokens: str, total_layer_tokens: str) -> str:
        warmup = next(f"{k}={v}" for k, v in self._given("warmup").items() if v is not None)
        total = next(f"{k}={v}" for k, v in self._given("total").items() if v is not None)
        return (
            f"lr.{warmup} is longer than lr.{total}: {warmup_layer_tokens} against {total_layer_tokens} "
            "layer-tokens in this run"
        )

    def _given(self, kind: str) -> dict[str, int | None]:
        """The ``total_*`` or ``warmup_*`` keys as given."""
        return {k: v for k, v in vars(self).items() if k.startswith(f"{kind}_")}

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

    @validate_call(config=STRICT)
    def __init__(
        self,
        total_steps: PositiveInt | None = None,
        warmup_steps: Count = 0,
        decay: Decay = "cosine",
        min_lr: NonNegativeFloat = 0.0,
    ) -> None:
        # a decay needs a length to decay over (0 would jump to min_lr at once); a constant has none
        raise_if(
            [f"total_steps=None must be a positive integer for decay={decay!r} (only decay='constant' needs none)"]
            if total_steps is None and decay != "constant"
            else []
        )
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps if total_steps is None else capped_warmup(warmup_steps, total_steps)
        self.decay = decay
        self.min_lr = min_lr

    def resolve(self, counter: ScheduledLayerTokens) -> None:
        """Nothing to resolve: steps are steps."""

    def lr(self, progress: float, base_lr: float) -> float:
        """The learning rate at ``progress`` (this schedule's unit) for a peak of ``base_lr``."""
        return warmup_decay_lr(progress, base_lr, self.warmup_steps, self.total_steps, self.min_lr, self.decay)
