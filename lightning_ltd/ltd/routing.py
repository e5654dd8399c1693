"""Which tokens each dropping layer keeps: one routing plan per step, a pure function of its key.

A plan is the kept indices of every dropping layer of a micro-batch, ``[n_layers, B, keep]``,
drawn in one batched operation: one keyed hash over ``[n_layers, B, T]``, one ``topk``, one
``sort``. The top-``k`` of i.i.d. uniform scores is a uniformly random ``k``-subset; sorting it
keeps the original token order, so causal attention on the subset stays exact.

The scores are the keyed hash (``lightning_ltd.ltd.keyed_hash``) of (seed, data-parallel rank,
plan counter, layer, row, token), computed with integer tensor ops, instead of a ``torch.Generator``
stream:

- no generator state: the plan of optimizer step ``s``, micro-batch ``m`` is the same whenever
  it is drawn, so exact resume needs nothing in the checkpoint and data workers cannot matter;
- the key lives in a device tensor that the forward reads, so ``torch.compile(fullgraph=True)``
  traces routing and blocks together, and a new step does not recompile anything;
- the same indices on every device (CPU and CUDA compute the same integers).
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_ltd.ltd.keyed_hash import MASK32, keyed_seed, mix32, stream_key
from lightning_ltd.ltd.schedule import drops

MICRO_BATCH_BITS = 16
"""A plan counter is ``step << 16 | micro_batch``: up to 65,536 micro-batches per optimizer step."""


def stream_id(seed: int, rank: int) -> int:
    """The 32-bit stream of one (seed, data-parallel rank): ranks draw independent plans."""
    return stream_key(seed, rank)


def plan_counter(step: int, micro_batch: int = 0) -> int:
    """The plan counter of (optimizer step, micro-batch index within the step)."""
    if not 0 <= micro_batch < 1 << MICRO_BATCH_BITS or step < 0:
        raise ValueError(f"need step >= 0 ({step}) and 0 <= micro_batch < 65536 ({micro_batch})")
    return step << MICRO_BATCH_BITS | micro_batch


def step_seed(seed: int, rank: int, step: int, micro_batch: int = 0) -> int:
    """A 63-bit seed for everything else random in a micro-batch (dropout): a pure function of
    the same coordinates as the plan, so a resumed run redraws the same dropout masks."""
    return keyed_seed(seed, rank, plan_counter(step, micro_batch))


def draw_plan(
    counter: torch.Tensor,
    stream: int,
    n_layers: int,
    batch_size: int,
    seq_len: int,
    keep: int,
    num_protected: int = 0,
    first_row: int = 0,
) -> torch.Tensor:
    """Kept indices ``[n_layers, B, keep]``, sorted ascending in each row, for one plan counter.

    ``counter`` is a 0-d int64 tensor (a tensor, so a compiled graph reads it instead of
    specialising on it); ``stream`` comes from ``stream_id``. The first ``num_protected``
    positions (prefix tokens such as [CLS]) are always kept. ``first_row`` draws rows
    ``first_row ..`` of the plan alone: layer ``i`` drawn by itself equals row ``i`` of the
    whole plan, so layers may draw their own rows and still follow one plan.
    """
    if not (0 <= num_protected <= keep <= seq_len and keep >= 1 and n_layers >= 1 and first_row >= 0):
        raise ValueError(
            f"need 0 <= num_protected ({num_protected}) <= keep ({keep}) <= seq_len ({seq_len}), keep >= 1, "
            f"n_layers >= 1 ({n_layers}) and first_row >= 0 ({first_row})"
        )
    free = seq_len - num_protected
    key = mix32(mix32((counter & MASK32) ^ stream) ^ (counter >> 32))
    second_key = mix32(key ^ 0x27D4EB2F)
    size = batch_size * free
    cells = torch.arange(first_row * size, (first_row + n_layers) * size, device=counter.device)
    cells = cells.view(n_layers, batch_size, free)
    scores = mix32(mix32(cells ^ key) ^ second_key)
    token = cells % free  # unique low bits: scores never tie, so every device picks the same tokens
    scores = scores << max(1, (free - 1).bit_length()) | token
    kept = scores.topk(keep - num_protected, dim=-1, sorted=False).indices.sort(dim=-1).values
    if num_protected == 0:
        return kept
    prefix = torch.arange(num_protected, device=kept.device).expand(n_layers, batch_size, num_protected)
    return torch.cat([prefix, kept + num_protected], dim=-1)


class TokenRouter(nn.Module):
    """The one place a model's kept length lives, and the source of its routing plans.

    The schedule callback sets ``keep`` and, before every training micro-batch, the plan counter
    ``(step, micro_batch)``; the model draws one plan per forward and gives each dropping layer
    its slice. Drawing never changes the router: a block run again in backward (activation
    checkpointing) keeps the same tokens. A model that is not driven moves on by itself at each
    training forward (``plan_per_forward``); ``advance()``, ``next_plan(model)`` and
    ``set_counter`` point the next forward at a plan of one's choice.

    Args:
        num_layers: dropping layers served by one plan.
        keep: kept tokens per row; None disables dropping.
        seed: base seed; data-parallel ranks draw from ``stream_id(seed, rank)``.
        num_protected: leading tokens (e.g. [CLS]) always kept; 0 follows the paper.
    """

    counter: torch.Tensor

    def __init__(self, num_layers: int = 1, keep: int | None = None, seed: int = 0, num_protected: int = 0) -> None:
        super().__init__()
        if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < 0:
            raise ValueError(f"num_layers must be an integer >= 0, got {num_layers!r}")
        if isinstance(num_protected, bool) or not isinstance(num_protected, int) or num_protected < 0:
            raise ValueError(f"num_protected must be an integer >= 0, got {num_protected!r}")
        self.num_layers = num_layers
        self.num_protected = num_protected
        self.keep = keep
        self.seed = seed
        self.rank = 0
        # not persistent: the counter is set from the step, so checkpoints need not carry it
        self.register_buffer("counter", torch.zeros((), dtype=torch.long), persistent=False)
        self.fresh = True  # the counter was just set (or never drawn): the next forward draws it as is

    @property
    def keep(self) -> int | None:
        """Kept tokens per row; None: no dropping."""
        return self._keep

    @keep.setter
    def keep(self, value: int | None) -> None:
        if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
            raise ValueError(f"keep must be a positive integer or None, got {value!r}")
        self._keep = None if value is None else int(value)

    @property
    def stream(self) -> int:
        """This router's 32-bit stream: ``stream_id(seed, rank)``."""
        return stream_id(self.seed, self.rank)

    def kept_length(self, seq_len: int) -> int | None:
        """Tokens a dropping layer keeps of ``seq_len`` (None: it keeps them all)."""
        if not drops(self._keep, seq_len):
            return None
        return max(self._keep, self.num_protected)  # type: ignore[type-var]

    def set_counter(self, step: int, micro_batch: int = 0) -> None:
        """Point the next plan at (optimizer step, micro-batch): one in-place fill, no host sync.
        A loop of one's own that resumes after ``n`` training forwards calls ``set_counter(n)``."""
        self.counter.fill_(plan_counter(step, micro_batch))
        self.fresh = True

    def plan(self, batch_size: int, seq_len: int, n_layers: int | None = None) -> torch.Tensor | None:
        """The current plan's kept indices ``[n_layers, B, keep]``, or None when nothing is dropped.

        Callers draw only in training mode. The same counter always gives the same plan.
        """
        return self.layer_plan(0, batch_size, seq_len, n_layers or self.num_layers)

    def layer_plan(self, first_row: int, batch_size: int, seq_len: int, n_layers: int = 1) -> torch.Tensor | None:
        """Rows ``first_row .. first_row + n_layers`` of the current plan: layers that draw their
        own rows (``apply_random_ltd``) still follow one plan."""
        keep = self.kept_length(seq_len)
        if keep is None:
            return None
        return draw_plan(self.counter, self.stream, n_layers, batch_size, seq_len, keep, self.num_protected, first_row)

    def advance(self) -> None:
        """Move on to the next plan: the driver's call between training steps, never a forward's."""
        self.counter.add_(1)
        self.fresh = True

    def next_forward(self) -> None:
        """A training forward of the model this router serves begins: it draws the counter as a
        driver set it (``set_counter``, ``advance``; a new router's 0), or else the next plan.
        Each forward counts as an optimizer step, so a loop that resumes after ``n`` forwards
        continues with ``set_counter(n)``; a driver's exact (step, micro-batch) plans stay as set."""
        if self.fresh:
            self.fresh = False
        else:
            self.counter.add_(1 << MICRO_BATCH_BITS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The identity: a router registered in an ``nn.Sequential`` (``apply_random_ltd`` on one)
        is called as one of its layers, and must pass the hidden states on."""
        return x

    def extra_repr(self) -> str:
        return f"num_layers={self.num_layers}, keep={self._keep}, seed={self.seed}, num_protected={self.num_protected}"


class RoutedKeep:
    """Descriptor: ``owner.keep`` reads and sets ``owner.router.keep``, so wrappers and models
    expose the kept length without holding a copy of it."""

    def __get__(self, owner: object, owner_type: type | None = None) -> int | None:
        return self if owner is None else owner.router.keep  # type: ignore[attr-defined,return-value]

    def __set__(self, owner: object, value: int | None) -> None:
        owner.router.keep = value  # type: ignore[attr-defined]


def plan_per_forward(module: nn.Module, args: tuple) -> None:
    """Forward pre-hook of a model whose router draws a new plan per training forward (the model
    ``apply_random_ltd`` wraps, a ``RandomLTD`` with a router of its own). Not in backward: a block
    recomputed by activation checkpointing keeps the tokens of its forward."""
    router = getattr(module, "ltd_router", None) or module.router  # type: ignore[union-attr]
    if module.training and (router.fresh or torch._C._current_graph_task_id() == -1):  # -1: not in backward
        router.next_forward()


def find_routers(module: nn.Module) -> list[TokenRouter]:
    """Every distinct ``TokenRouter`` inside ``module``."""
    return [m for m in module.modules() if isinstance(m, TokenRouter)]


def next_plan(module: nn.Module) -> None:
    """Move every router of ``module`` on to its next plan: the one call a training loop of one's
    own makes between steps (``RandomLTDScheduler`` sets the counter itself)."""
    for router in find_routers(module):
        router.advance()
