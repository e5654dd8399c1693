"""The layer-token ledger: exact local counts in Python integers, summed across ranks on demand.

Counting from integers that the host already has (rows, width, kept length) costs nothing on
the device; summing over data-parallel ranks is a collective, so it happens only where a total
is read (a logging step, a checkpoint, the end of the run), never per micro-batch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lightning_ltd.errors import is_int
from lightning_ltd.ltd.schedule import schedule_saving

Reduce = Callable[[list[int]], list[int]]
"""Sums a list of integers over all ranks (every rank must call it at the same point)."""


class LayerTokenLedger:
    """Layer-tokens consumed, and what the same batches would have consumed at full length."""

    def __init__(self) -> None:
        self.consumed = 0  # over all ranks, as of the last ``sync``
        self.full = 0
        self._pending = [0, 0]  # this rank's counts since then

    def add(self, consumed: int, full: int) -> None:
        """Count one micro-batch of this rank (host integers only)."""
        self._pending[0] += consumed
        self._pending[1] += full

    def sync(self, reduce: Reduce | None = None) -> None:
        """Fold every rank's pending counts into the totals (``reduce`` None: one process)."""
        pending = reduce(self._pending) if reduce is not None else self._pending
        self.consumed += int(pending[0])
        self.full += int(pending[1])
        self._pending = [0, 0]

    @property
    def saving(self) -> float:
        """Theoretical layer-token saving of the synced totals."""
        return schedule_saving(self.consumed, self.full)

    def state_dict(self) -> dict[str, int]:
        """Synced totals only: call ``sync`` first (on every rank) so nothing is pending."""
        return {"layer_tokens": self.consumed, "full_layer_tokens": self.full}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = int(state["layer_tokens"])
        self.full = int(state["full_layer_tokens"])
        self._pending = [0, 0]


COUNTS = ("layer_tokens", "full_layer_tokens", "scheduled_step", "scheduled_layer_tokens", "global_batch")
"""A driver's saved counts (the ledger's totals, where the LR schedule stood): whole numbers >= 0."""


def saved_state_problems(owner: str, state: dict[str, Any], global_step: int | None = None) -> list[str]:
    """What of a driver's saved state (``owner``: its class name) a resume could not go on from:
    a count that is not a whole number >= 0 (``int("lots")`` would fail mid-restore, a negative
    total would report a negative saving), more layer-tokens kept than the sequences held, or a
    ``scheduled_step`` other than the checkpoint's ``global_step`` (both are the trainer's step
    when it saved: the LR and budget would go on from another step's count)."""
    for key in COUNTS:
        if key in state and not (is_int(state[key]) and state[key] >= 0):
            return [f"its {owner} state has {key}={state[key]!r}, not a count"]
    scheduled = state.get("scheduled_step")
    if global_step is not None and scheduled is not None and scheduled != global_step:
        return [f"its {owner} state has scheduled_step={scheduled}, its global_step={global_step}"]
    kept, full = state.get("layer_tokens"), state.get("full_layer_tokens")
    if is_int(kept) and is_int(full) and kept > full:
        return [f"its {owner} state keeps {kept} layer-tokens of {full}: more than the sequences held"]
    return []
