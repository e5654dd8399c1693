"""``Curriculum``: the data-side half of DeepSpeed Data Efficiency, composed with random-LTD."""

from __future__ import annotations

from typing import Literal

import lightning as L
from lightning.pytorch.callbacks import Callback

from lightning_ltd.checks.schema import PositiveInt, WholePercent, checked
from lightning_ltd.data.curriculum import SeqLenSchedule, rarity_percent
from lightning_ltd.errors import raise_if
from lightning_ltd.modules.base import sequence_length


class Curriculum(Callback):
    """Sequence-length curriculum: every training batch is truncated to the length of its
    optimizer step, growing from ``min_len`` to ``max_len`` over ``steps`` on a linear or root-N
    schedule in multiples of ``granularity`` (the reference's ``seqlen_truncate``). Vocabulary-
    rarity curriculum: the training sampler draws from the easiest ``rarity_start`` share of the
    blocks in whole percentiles, growing to all of them over ``rarity_steps`` (``data=tokens``,
    scored once by ``python -m lightning_ltd.data.rarity``; ``EasiestFirstSampler``). Both apply
    the schedule as DeepSpeed's sampler does: optimizer step ``t`` trains at its value for ``t + 1``.

    The module does the cutting (``RandomLTDModule.truncate``, in ``on_after_batch_transfer``,
    training batches only: validation stays at full length); this callback owns the schedule and
    hands it to the module at setup. The random-LTD driver then sees the truncated width, so a
    layer drops only once the curriculum's length exceeds the kept length, and the layer-token
    ledger, the scheduled layer-tokens (the LayerToken LR, the budget) and the summary count the
    truncated lengths.

    Args:
        seqlen: False: no truncation (``curriculum=off``).
        min_len: the length at step 0.
        max_len: the length from ``steps`` on; None: the data's (or model's) sequence length.
        steps: optimizer steps over which the length grows.
        granularity: lengths are multiples of this (8 in the reference).
        schedule: ``linear`` or ``root`` (``root_degree``-th root: fast first, slow later).
        root_degree: the root of ``schedule=root`` (2 in the reference).
        rarity: serve the easiest blocks first.
        rarity_start: the share of the blocks served at step 0, a whole percent (1 % in the
            reference's GPT-3).
        rarity_steps: optimizer steps over which the share grows to all blocks.
        rarity_schedule, rarity_root_degree: as ``schedule`` and ``root_degree``, for the share.
        compile_buckets: with a compiled module, the lengths are bucketed into at most this many
            (each step at least its curriculum length), so the compiled graphs stay few.
    """

    @checked
    def __init__(
        self,
        seqlen: bool = False,
        min_len: PositiveInt = 64,
        max_len: PositiveInt | None = None,
        steps: PositiveInt = 1000,
        granularity: PositiveInt = 8,
        schedule: Literal["linear", "root"] = "linear",
        root_degree: PositiveInt = 2,
        rarity: bool = False,
        rarity_start: WholePercent = 0.01,
        rarity_steps: PositiveInt = 1000,
        rarity_schedule: Literal["linear", "root"] = "root",
        rarity_root_degree: PositiveInt = 2,
        compile_buckets: PositiveInt | None = 16,
    ) -> None:
        if max_len is not None and min_len > max_len:
            raise_if([f"min_len={min_len} must be <= max_len={max_len}"])
        self.seqlen = seqlen
        self.min_len, self.max_len, self.steps = min_len, max_len, steps
        self.granularity, self.schedule, self.root_degree = granularity, schedule, root_degree
        self.lengths: SeqLenSchedule | None = None  # resolved at setup, once the sequence length is known
        self.rarity, self.rarity_percent, self.rarity_steps = rarity, round(rarity_start * 100), rarity_steps
        self.rarity_degree = 1 if rarity_schedule == "linear" else rarity_root_degree
        self.compile_buckets = compile_buckets

    def resolve(self, sequence: int, compiled: bool = False) -> SeqLenSchedule | None:
        """The schedule for a run of ``sequence`` tokens per row (None: no truncation); a compiled
        module's in at most ``compile_buckets`` lengths (one graph each)."""
        if not self.seqlen:
            return None
        if self.max_len is not None and self.max_len > sequence:
            raise_if([f"max_len={self.max_len} exceeds the sequence length {sequence}"])
        top = self.max_len or sequence
        if self.min_len > top:
            raise_if([f"min_len={self.min_len} exceeds the sequence length {top}"])
        if self.min_len == top:
            raise_if([f"min_len={self.min_len} is the length it grows to: nothing is ever cut (curriculum=off)"])
        buckets = self.compile_buckets if compiled else None
        return SeqLenSchedule(self.min_len, top, self.steps, self.granularity, self.schedule, self.root_degree, buckets)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        compiled = bool(getattr(pl_module, "hparams", {}).get("compile"))
        self.lengths = self.resolve(sequence_length(pl_module, trainer.datamodule), compiled)
        pl_module.seq_len_at = None if self.lengths is None else self.lengths.length_at
        if self.rarity:  # the data module orders its training blocks easiest first
            trainer.datamodule.use_rarity(
                self.rarity_percent, self.rarity_steps, self.rarity_degree, trainer.accumulate_grad_batches
            )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        pl_module.seq_len_at = None

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: object) -> None:
        """Log the curriculum's length of the batch in flight (``train/seq_len``)."""
        if self.lengths is not None:
            pl_module.log("train/seq_len", float(self.lengths.length_at(trainer.global_step)), on_step=True)
        if self.rarity:
            percent = rarity_percent(trainer.global_step, self.rarity_percent, self.rarity_steps, self.rarity_degree)
            pl_module.log("train/rarity_fraction", percent / 100, on_step=True)
