"""``RoutingDriver``: before each training micro-batch, the kept length, the plan counter and
the step seed."""

from __future__ import annotations

from typing import Any, NamedTuple

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info

from lightning_ltd.errors import raise_if
from lightning_ltd.ltd import TokenRouter, step_seed
from lightning_ltd.ltd.lr import RunShape, ScheduledLayerTokens
from lightning_ltd.ltd.schedule import KeptLengthSchedule, drops
from lightning_ltd.models.compile import count_graphs, curriculum_graphs, recompile_limits
from lightning_ltd.modules.base import RandomLTDModule


class MicroBatch(NamedTuple):
    """The training micro-batch in flight, as the driver routed it."""

    step: int  # the optimizer step it belongs to
    index: int  # its index within that step (gradient accumulation)
    rows: int
    seq_len: int
    keep: int | None  # the scheduled kept length (None: no dropping)


class RoutingDriver(Callback):
    """Sets, on the module's ``TokenRouter`` (the one place the kept length lives), the MSLG kept
    length of the optimizer step (optimizer steps, so gradient accumulation does not speed the
    ramp up) and the plan counter (step, micro-batch), so kept indices are a pure function of
    (seed, rank, step, micro-batch, layer); with ``step_seeding`` it reseeds the global RNG
    (dropout) from the same coordinates, so a resumed run needs no RNG state.

    It also owns the two facts the other pieces read: ``micro_batch`` (the batch in flight) and
    ``scheduled`` (the scheduled layer-tokens counter, built from the first batch's shape and,
    after a resume, continuing from the count the checkpoint recorded: ``anchor``).

    Args are ``RandomLTDScheduler``'s of the same names.
    """

    def __init__(
        self,
        enabled: bool = True,
        min_keep: int = 32,
        max_keep: int | None = None,
        ramp_steps: int = 1000,
        granularity: int = 8,
        step_seeding: bool = True,
        compile_buckets: int | None = 16,
    ) -> None:
        self.enabled = enabled
        self.min_keep = min_keep
        self.max_keep = max_keep  # None: the model's (or the data's) sequence length, resolved at setup
        self.ramp_steps = ramp_steps
        self.granularity = granularity
        self.step_seeding = step_seeding
        self.compile_buckets = compile_buckets
        self.schedule = None if max_keep is None else KeptLengthSchedule(*self._settings(max_keep, None))
        self.scheduled: ScheduledLayerTokens | None = None
        self.micro_batch: MicroBatch | None = None
        self.anchor = (0, 0)  # (step, scheduled layer-tokens before it) of the checkpoint resumed from
        self._nominal_len: int | None = None
        self._routers: list[TokenRouter] = []
        self._limits: Any = None  # dynamo's graph limits for this fit (``recompile_limits``)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if not isinstance(pl_module, RandomLTDModule):
            raise TypeError(f"RandomLTDScheduler needs a RandomLTDModule, got {type(pl_module).__name__}")
        pl_module.check_contract()  # before the sizes are read
        self._routers = pl_module.routers()
        if self.enabled and not pl_module.ltd_layers():
            raise ValueError(f"{type(pl_module).__name__} has no RandomLTD layers to drive")
        data_len = getattr(trainer.datamodule, "block_size", None) if trainer.datamodule is not None else None
        self._nominal_len = min(pl_module.max_seq_len, data_len) if data_len else None
        max_keep = self.max_keep or self._nominal_len or pl_module.max_seq_len
        if self.enabled and self.min_keep > max_keep:
            raise_if([f"min_keep={self.min_keep} must be <= max_keep={max_keep} (the sequence length)"])
        compiled = bool(getattr(pl_module, "hparams", {}).get("compile"))  # one graph per kept length
        self.schedule = KeptLengthSchedule(*self._settings(max_keep, self.compile_buckets if compiled else None))
        widths = getattr(trainer.datamodule, "widths", None) if trainer.datamodule is not None else None
        graphs = count_graphs(widths or [self._nominal_len or pl_module.max_seq_len], self.distinct_keeps())
        self._release_limits()
        self._limits = recompile_limits(graphs)
        self._limits.__enter__()  # until teardown: the fit's own dynamo settings

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._release_limits()

    def _release_limits(self) -> None:
        if self._limits is not None:
            self._limits.__exit__(None, None, None)
            self._limits = None

    def _settings(self, max_keep: int, buckets: int | None) -> tuple[bool, int, int, int, int, int | None]:
        return self.enabled, self.min_keep, max_keep, self.ramp_steps, self.granularity, buckets

    def keep_at(self, step: int) -> int | None:
        """The kept length for optimizer step ``step`` (None when dropping is disabled)."""
        if self.schedule is None:
            raise RuntimeError("max_keep is unknown until setup() has seen the module")
        return self.schedule.keep_at(step)

    def distinct_keeps(self) -> list[int | None]:
        """Every kept length the whole schedule uses, ascending (each is one compiled graph)."""
        if self.schedule is None:
            raise RuntimeError("max_keep is unknown until setup() has seen the module")
        return self.schedule.distinct_keeps()

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.micro_batch = None  # the first batch (also after a resume) is micro-batch 0
        self.scheduled = None  # rebuilt from the first batch's shape
        if pl_module.seq_len_at is not None and getattr(pl_module, "hparams", {}).get("compile"):
            self._limit_curriculum_graphs(trainer, pl_module)

    def _limit_curriculum_graphs(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The graph budget from the (curriculum length, kept length) pairs the run trains at
        (the curriculum hands its lengths over at its own setup, after this one's), said at start."""
        lengths = pl_module.seq_len_at.__self__  # the curriculum's ``SeqLenSchedule``
        last = max(lengths.steps, self.ramp_steps) + 1  # both constant after their ramps
        steps = min(trainer.max_steps, last) if trainer.max_steps > 0 else last
        widths = getattr(trainer.datamodule, "widths", None) or [self._nominal_len or pl_module.max_seq_len]
        graphs = curriculum_graphs(pl_module.seq_len_at, self.keep_at, steps, widths)
        self._release_limits()
        self._limits = recompile_limits(graphs)
        self._limits.__enter__()
        rank_zero_info(f"model.compile: {graphs} graphs for this schedule (curriculum lengths x kept lengths)")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: RandomLTDModule, batch: Any, batch_idx: int) -> None:
        step, previous = trainer.global_step, self.micro_batch
        index = previous.index + 1 if previous is not None and previous.step == step else 0
        rows, seq_len = pl_module.token_shape(batch)
        keep = self.keep_at(step)
        self.micro_batch = MicroBatch(step, index, rows, seq_len, keep)
        routed = keep if drops(keep, seq_len) else None  # one graph per (width, kept length)
        for router in self._routers:
            router.keep = routed
            router.set_counter(step, index)
        if self.step_seeding:
            seed = self._routers[0].seed if self._routers else pl_module.ltd_seed  # no module walk per batch
            torch.manual_seed(step_seed(seed, pl_module.global_rank, step, index))
        if self.scheduled is None:
            self.scheduled = ScheduledLayerTokens(self.run_shape(trainer, pl_module, rows, seq_len), self.anchor)

    def run_shape(self, trainer: L.Trainer, pl_module: RandomLTDModule, rows: int, seq_len: int) -> RunShape:
        """One optimizer step at the nominal width (the data's block size, else this batch's),
        or at the curriculum's length of each step."""
        return RunShape(
            global_batch=rows * trainer.world_size * trainer.accumulate_grad_batches,
            seq_len=self._nominal_len or seq_len,
            n_layer=pl_module.num_layers,
            n_dropping=len(pl_module.ltd_layers()),
            keep_at=self.keep_at,
            seq_len_at=pl_module.seq_len_at,
        )

    def stepped(self, trainer: L.Trainer) -> bool:
        """Whether the micro-batch that just ended took an optimizer step (call at batch end)."""
        return self.micro_batch is not None and trainer.global_step != self.micro_batch.step
