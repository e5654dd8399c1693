"""Training FLOPs of a network we did not write, counted by PyTorch rather than by a formula."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from fractions import Fraction

import torch
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

from lightning_ltd.ltd import find_routers
from lightning_ltd.ltd.schedule import drops


class MeasuredFlops:
    """FLOPs of one training step (forward and backward) of a Hugging Face or LitGPT network, as
    LitGPT's ``measure_flops`` counts them: ``FlopCounterMode`` over a twin built on the meta
    device and run on fake tensors (no memory, no arithmetic). Our own networks count theirs in
    closed form; these families differ too much in their blocks for one formula.

    A row's FLOPs at width ``T`` are a quadratic in the kept length ``k`` (projections grow with
    ``k``, attention with ``k**2``), so three counts per width (``k = T, T/2, T/4``) give every
    kept length exactly: a ramp over hundreds of kept lengths costs three counts, not hundreds
    (about 2 s each at 1.1B parameters). A batch is ``rows`` times a row. A family the fake
    tensors cannot run (Mixtral's grouped matmuls) counts as unknown (None), with one warning.

    Args:
        build: builds the network with its random-LTD layers (called once, under the meta device).
        forward: the training forward from ``[1, T]`` token ids to the output the loss reads.
    """

    def __init__(self, build: Callable[[], nn.Module], forward: Callable[[nn.Module, torch.Tensor], torch.Tensor]):
        self.build = build
        self.forward = forward
        self._twin: nn.Module | None = None
        self._per_width: dict[int, list[tuple[int, int]] | None] = {}  # (kept length, FLOPs of a row)

    def __call__(self, rows: int, seq_len: int, keep: int | None) -> int | None:
        if seq_len not in self._per_width:
            self._per_width[seq_len] = self._points(seq_len)
        points = self._per_width[seq_len]
        if points is None:
            return None
        kept = keep if drops(keep, seq_len) else seq_len
        return rows * interpolate(points, kept)

    def _points(self, seq_len: int) -> list[tuple[int, int]] | None:
        kept = sorted({seq_len, max(1, seq_len // 2), max(1, seq_len // 4)})
        try:
            return [(k, self.count(seq_len, k)) for k in kept]
        except Exception as err:  # an op without a fake-tensor kernel: FLOPs unknown, training goes on
            warnings.warn(f"model FLOPs are not counted for this network ({type(err).__name__}: {err})", stacklevel=2)
            return None

    def count(self, seq_len: int, keep: int) -> int:
        """FLOPs of one row of ``seq_len`` tokens at kept length ``keep``, counted."""
        if self._twin is None:
            with torch.device("meta"), torch.inference_mode(False):
                self._twin = self.build().train()
        for router in find_routers(self._twin):
            router.keep = keep if drops(keep, seq_len) else None
        # fake tensors over the meta twin: code that branches on values where it is not tracing
        # (transformers' mask builders call .item()) takes its tracing path instead
        # (and with autograd on, wherever the count is asked for: a callback may run under no_grad)
        with (
            torch.inference_mode(False),
            torch.enable_grad(),
            FakeTensorMode(allow_non_fake_inputs=True),
            FlopCounterMode(display=False) as counter,
        ):
            ids = torch.zeros(1, seq_len, dtype=torch.long, device="meta")
            self.forward(self._twin, ids).float().sum().backward()
        self._twin.zero_grad(set_to_none=True)
        return int(counter.get_total_flops())


def interpolate(points: list[tuple[int, int]], x: int) -> int:
    """The polynomial through ``points`` (at most a quadratic) at ``x``, in exact arithmetic."""
    total = Fraction(0)
    for i, (xi, yi) in enumerate(points):
        term = Fraction(yi)
        for j, (xj, _) in enumerate(points):
            if j != i:
                term *= Fraction(x - xj, xi - xj)
        total += term
    return int(total)
